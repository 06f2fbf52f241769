"""The declared checks as the API sees them: status, manual runs, and the stale-check watchdog."""

import logging
from datetime import datetime, timedelta

from api.periodic import Periodic
from flows.checks.config import CheckSpec
from flows.checks.runner import run_check
from models.base import utcnow
from models.check_run import CheckRun
from models.db import Database, transaction
from models.errors import NotFound, RateLimited
from models.issue_opener import IssueOpener
from models.services import checks as service
from models.services.incidents import IncidentCap
from models.settings import Settings

log = logging.getLogger("intervene.checks")


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

    def next_run_at(self, spec: CheckSpec, last: CheckRun | None) -> datetime | None:
        return last.started_at + timedelta(seconds=spec.every) if last else None

    def is_stale(self, spec: CheckSpec, last: CheckRun | None, now: datetime) -> bool:
        since = last.started_at if last else self.started_at
        return (now - since).total_seconds() > self.settings.check_stale_intervals * spec.every

    async def last_runs(self) -> dict[str, CheckRun]:
        async with transaction(self.database.reader) as session:
            return await service.last_runs(session)

    async def runs(self, check_id: str, limit: int) -> list[CheckRun]:
        self.get(check_id)
        async with transaction(self.database.reader) as session:
            return await service.list_runs(session, check_id, limit=limit)

    async def run_now(self, check_id: str) -> CheckRun:
        return await run_check(self.get(check_id), self.database, self.settings)

    def start_watchdog(self) -> None:
        self._watchdog.start()

    async def stop(self) -> None:
        await self._watchdog.stop()

    async def watch(self) -> list[str]:
        """Open (or count again) an incident for every check that stopped running."""
        now = utcnow()
        last = await self.last_runs()
        stale = [
            spec for spec in self.specs.values() if self.is_stale(spec, last.get(spec.id), now)
        ]
        cap = IncidentCap(
            limit=self.settings.incident_cap_per_key, window=self.settings.incident_cap_window
        )
        for spec in stale:
            previous = last.get(spec.id)
            silent = (now - (previous.started_at if previous else self.started_at)).total_seconds()
            try:
                async with transaction(self.database.writer) as session:
                    incident, created = await service.open_check_incident(
                        session, check_id=spec.id, agent=spec.agent, problem="stale",
                        summary=f"Check {spec.id} has not run for {silent:.0f} s "
                        f"(it runs every {spec.every:g} s): is the worker or its schedule down?",
                        threshold=self.settings.check_stale_intervals * spec.every, actual=silent,
                        cap=cap, at=now,
                    )  # fmt: skip
            except RateLimited:
                continue  # the cap holds this key back; counted again next pass
            log.warning("check %s is stale (%.0f s without a run)", spec.id, silent)
            if created:
                await IssueOpener(self.settings).open_for(self.database, [incident.id])
        return [spec.id for spec in stale]
