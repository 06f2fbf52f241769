"""The body of GET /api/stats."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from models.enums import IncidentStatus, Severity, SlaTimer
from models.services.stats import IncidentStats, TimerTally


class StatsWindow(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime


class TimerCompliance(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    met: int
    breached: int
    pending: int
    compliance: float | None = Field(description="met / (met + breached); null if none decided")


class SeverityCompliance(BaseModel):
    """Per timer; null where the severity sets no target."""

    acknowledge: TimerCompliance | None
    mitigate: TimerCompliance | None
    resolve: TimerCompliance | None

    @classmethod
    def of(cls, tallies: dict[SlaTimer, TimerTally | None]) -> "SeverityCompliance":
        return cls.model_validate(
            {timer.value: tally for timer, tally in tallies.items()}, from_attributes=True
        )


class Stats(BaseModel):
    window: StatsWindow
    by_status: dict[IncidentStatus, int]
    by_severity: dict[Severity, int]
    mtta_seconds: float | None
    mttr_seconds: float | None
    sla: dict[Severity, SeverityCompliance]

    @classmethod
    def of(cls, stats: IncidentStats) -> "Stats":
        return cls(
            window=StatsWindow(from_=stats.since, to=stats.until),
            by_status=stats.by_status,
            by_severity=stats.by_severity,
            mtta_seconds=stats.mtta_seconds,
            mttr_seconds=stats.mttr_seconds,
            sla={sev: SeverityCompliance.of(tallies) for sev, tallies in stats.sla.items()},
        )
