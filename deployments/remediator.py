"""The remediation loop as `intervene services` runs it (remediation/loop.py says what it does).

It executes actions through Prefect (api/launcher.py, as the API does) and verifies a check's
fix with a flow run of the check's deployment `check/<id>` (a routed alert's, by its source
resolving it), tagged `verification` (so the check's flow
records trigger `verification`), `remediation:<id>` and `incident:<id>`, which the Prefect UI
shows beside the action's own run.
"""

import asyncio
import logging
import time

from prefect import get_client
from prefect.client.orchestration import PrefectClient

from alerts.rules import load_rules
from api.check_launcher import start_check_run
from api.launcher import PrefectLauncher
from flows.checks.trigger import VERIFICATION_TAG
from models.db import connect
from models.settings import Settings
from playbooks.catalog import SUGGESTABLE, load_checks
from playbooks.service import Playbooks
from remediation.loop import Remediator

log = logging.getLogger("intervene.remediation")

BUSY_POLL_SECONDS = 0.1
OUTAGE_POLL_MAX = 15.0


class PrefectVerifier:
    def __init__(self, client: PrefectClient | None = None) -> None:
        self.client = client

    async def start(self, check_id: str, *, remediation_id: int, incident_id: int) -> str:
        tags = [
            "intervene",
            "check",
            VERIFICATION_TAG,
            f"remediation:{remediation_id}",
            f"incident:{incident_id}",
        ]
        started = time.monotonic()
        flow_run_id = str(await start_check_run(check_id, tags, self.client))
        took = time.monotonic() - started
        if took > 1:
            log.info(
                "remediation %s: Prefect took %.1f s to start its verification",
                remediation_id,
                took,
            )
        return flow_run_id


async def remediate_forever(settings: Settings) -> None:
    specs = load_checks(settings.checks_file)
    rules = load_rules(settings.alert_rules_file, SUGGESTABLE)
    checks = any(s.remediation and s.remediation.mode == "auto" for s in specs.values())
    if not checks and not rules.policies(mode="auto"):
        log.info("no check or alert rule has automatic remediation: the loop has nothing to do")
        return
    database = connect(settings.database_url, pool_size=2, max_overflow=2)
    playbooks = Playbooks(database, settings, PrefectLauncher(settings.prefect_ui_url))
    try:
        async with get_client() as client:
            remediator = Remediator(
                database, settings, playbooks, specs, PrefectVerifier(client), rules=rules
            )
            await _loop(remediator, settings)
    finally:
        await database.dispose()


async def _loop(remediator: Remediator, settings: Settings) -> None:
    failing_since: float | None = None
    while True:
        try:
            await remediator.tick()
            failing_since = None
        except Exception:  # keep going: the next pass may succeed (an outage ends)
            if failing_since is None:
                log.exception("remediation pass failed; trying again")
                failing_since = time.monotonic()
        if failing_since is not None:  # back off while the database or Prefect is out
            await asyncio.sleep(min(OUTAGE_POLL_MAX, 1 + time.monotonic() - failing_since))
            continue
        # an attempt in flight waits on its action or its check: looked at often, so that
        # each step follows the one before within a tenth of a second
        idle = settings.remediation_poll_seconds
        await asyncio.sleep(min(idle, BUSY_POLL_SECONDS) if remediator.busy else idle)
