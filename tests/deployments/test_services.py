"""`intervene services`: its loops supervised (a crash is logged and the loop started again with
backoff), stopped cleanly by SIGTERM; the production path is tests/deployments/test_pool_path.py."""

import asyncio
import itertools
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deployments.services import LOOPS, Loop, run_loops, supervise
from models.settings import Settings


def test_the_loops_are_the_reconciler_webhooks_events_remediation_silences_pages_reports() -> None:
    assert [loop.name for loop in LOOPS] == [
        "reconciler", "webhooks", "prefect_events", "remediation", "silences", "notifications",
        "reports",
    ]  # fmt: skip


async def test_a_loop_that_returns_is_not_started_again(settings: Settings) -> None:
    calls: list[int] = []

    async def idle(_settings: Settings) -> None:
        calls.append(1)

    await asyncio.wait_for(supervise(Loop("idle", idle), settings, backoff_start=0.01), 5)
    assert calls == [1]


async def test_a_loop_that_fails_is_logged_and_started_again_with_backoff(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    starts: list[float] = []
    healthy = asyncio.Event()

    async def flaky(_settings: Settings) -> None:
        starts.append(time.monotonic())
        if len(starts) <= 3:
            raise RuntimeError(f"failure {len(starts)}")
        healthy.set()
        await asyncio.Event().wait()  # runs for ever

    task = asyncio.create_task(
        supervise(Loop("flaky", flaky), settings, backoff_start=0.05, backoff_max=0.1)
    )
    with caplog.at_level(logging.ERROR, logger="intervene.services"):
        await asyncio.wait_for(healthy.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert len(starts) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps[0] >= 0.05
    assert min(gaps[1:]) >= 0.1  # doubled, then capped
    failures = [r for r in caplog.records if "loop flaky failed" in r.getMessage()]
    assert len(failures) == 3
    assert all(r.exc_info is not None for r in failures)


async def test_run_loops_cancels_every_loop_when_told_to_stop(settings: Settings) -> None:
    cancelled: list[str] = []

    def forever(name: str) -> Loop:
        async def run(_settings: Settings) -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(name)
                raise

        return Loop(name, run)

    stop = asyncio.Event()
    running = asyncio.create_task(run_loops(settings, [forever("a"), forever("b")], stop))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(running, 5)
    assert sorted(cancelled) == ["a", "b"]


def test_intervene_services_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "INTERVENE_DATABASE_URL": f"sqlite:///{tmp_path / 'intervene.db'}",
        "PREFECT_API_URL": "http://127.0.0.1:9/api",  # nothing there: the passes fail, logged
        "INTERVENE_LOG_FORMAT": "text",
    }
    subprocess.run(
        [sys.executable, "-m", "intervene_cli", "db", "upgrade"], env=env, check=True,
        capture_output=True,
    )  # fmt: skip
    log = tmp_path / "services.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "intervene_cli", "services"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "running reconciler, webhooks, prefect_events" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "stopped" in log.read_text()
    assert "loop prefect_events finished" in log.read_text()  # no pipeline watched here
