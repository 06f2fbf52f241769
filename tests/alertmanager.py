"""A real Prometheus Alertmanager for the tests (Debian's `prometheus-alertmanager`).

`RunningAlertmanager` writes a configuration (a webhook receiver with a bearer token, and
optionally a PagerDuty receiver whose Events v2 `url` points wherever the test wants), starts
the binary on a free port of 127.0.0.1 with its own storage and no clustering, waits for
`/-/ready`, and stops it afterwards. Tests post alerts to its v2 API and resolve them by posting
them again with `endsAt` in the past.

Alerts with the label `receiver="pagerduty"` (the route label is configurable) go to the
PagerDuty receiver; every other alert goes to the webhook. Notifications are fast: `group_wait`
and `group_interval` are 1 s, and by default every alert is its own group (`group_by: ["..."]`),
so one notification carries one alert.

Skipped when the binary is missing, unless INTERVENE_TEST_ALERTMANAGER=required (CI), where that
is a failure. INTERVENE_TEST_ALERTMANAGER_BIN points at another binary.
"""

import os
import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import pytest
import yaml

BINARY = (
    os.environ.get("INTERVENE_TEST_ALERTMANAGER_BIN")
    or shutil.which("prometheus-alertmanager")
    or shutil.which("alertmanager")
    or ""
)
AMTOOL = shutil.which("amtool") or ""
REQUIRED = os.environ.get("INTERVENE_TEST_ALERTMANAGER", "").lower() == "required"

Labels = dict[str, str]
Alert = dict[str, Any]


def require_alertmanager() -> str:
    """The Alertmanager binary; skips the test without one (fails under `required`)."""
    if BINARY and os.access(BINARY, os.X_OK):
        return BINARY
    reason = "no Alertmanager binary (apt-get install prometheus-alertmanager)"
    if REQUIRED:
        pytest.fail(f"INTERVENE_TEST_ALERTMANAGER=required but {reason}", pytrace=False)
    pytest.skip(f"Alertmanager tests skipped: {reason}")


def timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 in UTC with milliseconds, as Alertmanager's API takes it."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _key(labels: Labels) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


class RunningAlertmanager:
    """An Alertmanager process configured for one test (or a module); a context manager.

    with RunningAlertmanager(tmp_path, webhook_url=url, webhook_token="t") as am:
        am.fire({"alertname": "DiskFull", "severity": "critical"}, {"summary": "..."})
        ...
        am.resolve({"alertname": "DiskFull", "severity": "critical"})
    """

    def __init__(
        self,
        directory: Path,
        *,
        webhook_url: str | None = None,
        webhook_token: str | None = None,
        webhook_max_alerts: int = 0,
        pagerduty_url: str | None = None,
        pagerduty_routing_key: str = "intervene-test-routing-key",
        pagerduty_severity: str | None = None,  # Alertmanager sends "error" without one
        pagerduty_description: str | None = None,  # a Go template; default "[FIRING:1] ..."
        pagerduty_details: dict[str, str] | None = None,  # merged into the default details
        route_label: str = "receiver",  # alerts with route_label="pagerduty" go to PagerDuty
        send_resolved: bool = True,
        group_by: list[str] | None = None,  # default ["..."]: every alert its own group
        group_wait: str = "1s",
        group_interval: str = "1s",
        repeat_interval: str = "1h",
        resolve_timeout: str = "5m",
        start_seconds: float = 20,
        stop_seconds: float = 10,
    ) -> None:
        self.directory = directory
        self.webhook_url, self.webhook_token = webhook_url, webhook_token
        self.webhook_max_alerts = webhook_max_alerts
        self.pagerduty_url, self.pagerduty_routing_key = pagerduty_url, pagerduty_routing_key
        self.pagerduty_severity = pagerduty_severity
        self.pagerduty_description = pagerduty_description
        self.pagerduty_details = pagerduty_details
        self.route_label = route_label
        self.send_resolved = send_resolved
        self.group_by = ["..."] if group_by is None else group_by
        self.group_wait, self.group_interval = group_wait, group_interval
        self.repeat_interval, self.resolve_timeout = repeat_interval, resolve_timeout
        self.start_seconds, self.stop_seconds = start_seconds, stop_seconds
        self.config_file = directory / "alertmanager.yml"
        self.log_file = directory / "alertmanager.log"
        self.storage = directory / "alertmanager-data"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._firing: dict[tuple[tuple[str, str], ...], Alert] = {}  # by labels, as posted

    # -- configuration ---------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        receivers: list[dict[str, Any]] = []
        webhook: dict[str, Any] = {"name": "webhook"}
        if self.webhook_url:
            hook: dict[str, Any] = {
                "url": self.webhook_url,
                "send_resolved": self.send_resolved,
                "max_alerts": self.webhook_max_alerts,
            }
            if self.webhook_token:
                hook["http_config"] = {
                    "authorization": {"type": "Bearer", "credentials": self.webhook_token}
                }
            webhook["webhook_configs"] = [hook]
        receivers.append(webhook)
        route: dict[str, Any] = {
            "receiver": "webhook",
            "group_by": self.group_by,
            "group_wait": self.group_wait,
            "group_interval": self.group_interval,
            "repeat_interval": self.repeat_interval,
        }
        if self.pagerduty_url:
            pagerduty: dict[str, Any] = {
                "url": self.pagerduty_url,
                "routing_key": self.pagerduty_routing_key,
                "send_resolved": self.send_resolved,
            }
            if self.pagerduty_severity is not None:
                pagerduty["severity"] = self.pagerduty_severity
            if self.pagerduty_description is not None:
                pagerduty["description"] = self.pagerduty_description
            if self.pagerduty_details is not None:
                pagerduty["details"] = self.pagerduty_details
            receivers.append({"name": "pagerduty", "pagerduty_configs": [pagerduty]})
            route["routes"] = [
                {"receiver": "pagerduty", "matchers": [f'{self.route_label}="pagerduty"']}
            ]
        return {
            "global": {"resolve_timeout": self.resolve_timeout},
            "route": route,
            "receivers": receivers,
        }

    def write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        return self.config_file

    # -- process ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        binary = require_alertmanager()
        self.write_config()
        self.storage.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):  # another process may take the free port before we bind it
            self.port = _free_port()
            command = [
                binary,
                f"--config.file={self.config_file}",
                f"--storage.path={self.storage}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--web.external-url={self.url}",  # else externalURL is http://<hostname>:port
                "--cluster.listen-address=",  # empty: no gossip, no port 9094
                "--log.level=debug",  # every notification attempt lands in the log
            ]
            with self.log_file.open("ab") as log:
                self.process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C on pytest does not reach it; we stop it
                )
            if self._wait_ready():
                return self
            if "address already in use" not in self.log():
                break
        self.stop()
        raise RuntimeError(
            f"Alertmanager did not become ready within {self.start_seconds} s; its log:\n"
            + self.log()[-4000:]
        )

    def _wait_ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + self.start_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after `stop_seconds`; only the process this object started."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(self.stop_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    # -- alerts ----------------------------------------------------------------------------

    def post_alerts(self, alerts: list[Alert]) -> None:
        """POST /api/v2/alerts as given (labels, annotations, startsAt, endsAt, generatorURL)."""
        response = httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=10)
        if response.status_code != 200:
            raise RuntimeError(f"Alertmanager refused the alerts: {response.status_code} "
                               f"{response.text}")  # fmt: skip
        for alert in alerts:
            if alert.get("endsAt"):
                self._firing.pop(_key(alert["labels"]), None)
            else:
                self._firing.setdefault(_key(alert["labels"]), alert)

    def fire(
        self,
        labels: Labels,
        annotations: dict[str, str] | None = None,
        generator_url: str = "http://127.0.0.1/intervene-test",
        starts_at: datetime | None = None,
    ) -> Alert:
        """Post one firing alert (no endsAt: it lasts `resolve_timeout` unless re-posted)."""
        alert: Alert = {
            "labels": labels,
            "annotations": annotations or {},
            "startsAt": timestamp(starts_at),
            "generatorURL": generator_url,
        }
        self.post_alerts([alert])
        return alert

    def resolve(self, labels: Labels) -> Alert:
        """Post the alert again with `endsAt` in the past: Alertmanager resolves it and, with
        send_resolved, notifies at the group's next flush (`group_interval`).

        The alert is re-posted as it fired (annotations, generatorURL, startsAt): Alertmanager
        keeps the newest post's annotations and generatorURL, so a bare resolve would empty
        them in the resolved notification, and it refuses an end before the start."""
        now = datetime.now(UTC)
        fired = self._firing.get(_key(labels)) or {
            "labels": labels,
            "annotations": {},
            "startsAt": timestamp(now - timedelta(seconds=1)),
        }
        alert: Alert = {**fired, "endsAt": timestamp(now)}
        self.post_alerts([alert])
        return alert

    def alerts(self) -> list[Alert]:
        """GET /api/v2/alerts: what Alertmanager holds now (active, silenced or inhibited)."""
        response = httpx.get(f"{self.url}/api/v2/alerts", timeout=10)
        response.raise_for_status()
        alerts: list[Alert] = response.json()
        return alerts


def check_config(path: Path) -> str:
    """`amtool check-config` on a written configuration (its output); skips without amtool."""
    if not AMTOOL:
        pytest.skip("amtool not installed (it ships with prometheus-alertmanager)")
    done = subprocess.run(
        [AMTOOL, "check-config", str(path)], capture_output=True, text=True, timeout=30
    )
    if done.returncode != 0:
        raise AssertionError(f"amtool check-config failed:\n{done.stdout}{done.stderr}")
    return done.stdout
