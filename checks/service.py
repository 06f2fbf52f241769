"""The declared checks as the API shows them: status, manual runs, and the stale-check watchdog."""

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from checks.config import CheckSpec
from checks.periodic import Periodic
from checks.runner import run_check
from integrations.issue_opener import IssueOpener
from models.base import utcnow
from models.check_run import CheckRun
from models.db import Database, transaction
from models.enums import RunTrigger
from models.errors import NotFound
from models.services import check_health as health
from models.services import checks as service
from models.services.incidents import IncidentCap
from models.settings import Settings

log = logging.getLogger("intervene.checks")


class Later(Protocol):
    """Work to do once the answer is sent (FastAPI's BackgroundTasks is one)."""

    def add_task(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None: ...


class Checks:
    def __init__(self, specs: dict[str, CheckSpec], database: Database, settings: Settings) -> None:
        self.specs = specs
        self.database = database
        self.settings = settings
        self.started_at = utcnow()  # a check that never ran is judged from here
        self._watchdog = Periodic(
            "stale-check watchdog", settings.watchdog_interval_seconds, self.watch
        )

    def get(self, check_id: str) -> CheckSpec:
        spec = self.specs.get(check_id)
        if spec is None:
            raise NotFound(f"Check {check_id!r} not found", details={"check_id": check_id})
        return spec

    # `scheduled`: the check's newest run that its schedule started (Checks.last_runs(SCHEDULE))
    def next_run_at(self, spec: CheckSpec, scheduled: CheckRun | None) -> datetime | None:
        return scheduled.started_at + timedelta(seconds=spec.every) if scheduled else None

    def is_stale(self, spec: CheckSpec, scheduled: CheckRun | None, now: datetime) -> bool:
        since = scheduled.started_at if scheduled else self.started_at
        return (now - since).total_seconds() > self.settings.check_stale_intervals * spec.every

    async def last_runs(self, trigger: RunTrigger | None = None) -> dict[str, CheckRun]:
        async with transaction(self.database.reader) as session:
            return await service.last_runs(session, trigger=trigger)

    async def runs(self, check_id: str, limit: int) -> list[CheckRun]:
        self.get(check_id)
        async with transaction(self.database.reader) as session:
            return await service.list_runs(session, check_id, limit=limit)

    async def run_of_flow_run(self, flow_run_id: str) -> CheckRun | None:
        async with transaction(self.database.reader) as session:
            return await service.run_of_flow_run(session, flow_run_id)

    async def run_now(self, check_id: str, later: Later) -> CheckRun:
        """Run the check; the issues of the incidents it opens are opened after the answer."""
        opened: list[int] = []
        run = await run_check(
            self.get(check_id),
            self.database,
            self.settings,
            opened=opened,
            trigger=RunTrigger.MANUAL,
        )
        later.add_task(IssueOpener(self.settings).open_for, self.database, opened)
        return run

    def start_watchdog(self) -> None:
        self._watchdog.start()

    async def stop(self) -> None:
        await self._watchdog.stop()

    async def watch(self, now: datetime | None = None) -> list[str] | None:
        """Open (or count again, once per interval) an incident for every check that stopped
        running; the ids of the stale checks, or None when another process is on it now."""
        now = now or utcnow()
        cap = IncidentCap(
            limit=self.settings.incident_cap_per_key, window=self.settings.incident_cap_window
        )
        async with transaction(self.database.writer) as session:
            if not await health.take_watchdog_turn(session):
                return None
            # read under the turn: what others wrote; only the schedule's runs prove it runs
            last = await service.last_runs(session, trigger=RunTrigger.SCHEDULE)
            stale = [
                self._stale(spec, last.get(spec.id), now)
                for spec in self.specs.values()
                if self.is_stale(spec, last.get(spec.id), now)
            ]
            written = await health.record_stale(session, stale, cap=cap, at=now)
        for item in stale:
            log.warning(
                "check %s is stale (%.0f s without a run)",
                item.problem.check_id,
                item.problem.actual,
            )
        opened = [incident.id for incident, created in written if created]
        if opened:
            await IssueOpener(self.settings).open_for(self.database, opened)
        return [item.problem.check_id for item in stale]

    def _stale(self, spec: CheckSpec, last: CheckRun | None, now: datetime) -> health.Stale:
        silent = (now - (last.started_at if last else self.started_at)).total_seconds()
        return health.Stale(
            problem=health.CheckProblem(
                check_id=spec.id,
                agent=spec.agent,
                severity=spec.incident_severity,
                problem="stale",
                summary=f"Check {spec.id} has not run for {silent:.0f} s "
                f"(it runs every {spec.every:g} s): is the worker or its schedule down?",
                threshold=self.settings.check_stale_intervals * spec.every,
                actual=silent,
            ),
            every=spec.every,
        )
