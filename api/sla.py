"""The SLA sweep: every API process announces the SLA timers that ran out.

Several processes sweeping at once is safe: the service locks and re-checks each incident, so
a breach is announced once (models/services/sla.py).
"""

import logging
from datetime import datetime

from checks.periodic import Periodic
from models.base import utcnow
from models.db import Database, transaction
from models.services.sla import Breach, record_sla_breaches
from models.settings import Settings

log = logging.getLogger("intervene.sla")


class SlaSweep:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self._loop = Periodic("sla-sweep", settings.sla_sweep_interval_seconds, self.sweep)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def sweep(self, now: datetime | None = None) -> list[Breach]:
        async with transaction(self.database.writer) as session:
            breaches = await record_sla_breaches(
                session, now=now or utcnow(), targets=self.settings.sla_targets
            )
        for breach in breaches:
            log.warning(
                "incident %d breached its %s SLA (due %s)",
                breach.incident_id,
                breach.timer.value,
                breach.due_at.isoformat(),
            )
        return breaches
