"""One request's alerts, routed by the rules and taken in one write transaction.

The API routes (api/routes/integrations.py) and `intervene ingest dbt` both come here, so an
alert is treated the same whichever way it arrives.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from alerts.rules import AlertRules
from models.alert import Alert, Refusal
from models.base import utcnow
from models.services.alert_intake import QUIET, Downstream, Outcome, Taken, take_alerts
from models.services.incidents import IncidentCap


@dataclass(frozen=True)
class Intake:
    """What one request did: each alert taken, each refused, in the order given."""

    taken: list[Taken]
    refused: list[Refusal] = field(default_factory=list)

    def outcomes(self) -> Counter[Outcome]:
        return Counter(item.outcome for item in self.taken)

    def quiet(self) -> Counter[Outcome]:
        """What opened nothing and notified no one, by reason."""
        return Counter(item.outcome for item in self.taken if item.outcome in QUIET)

    def opened(self) -> list[int]:
        return [
            item.incident_id
            for item in self.taken
            if item.outcome is Outcome.OPENED and item.incident_id is not None
        ]


async def take(
    session: AsyncSession,
    alerts: Sequence[Alert],
    *,
    rules: AlertRules,
    cap: IncidentCap,
    refused: Sequence[Refusal] = (),
    downstream: Downstream | None = None,
) -> Intake:
    routed = [rules.route(alert) for alert in alerts]
    taken = await take_alerts(session, routed, cap=cap, at=utcnow(), downstream=downstream)
    return Intake(taken=taken, refused=list(refused))
