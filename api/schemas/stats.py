"""The body of GET /api/stats."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from models.enums import IncidentKind, IncidentStatus, Severity, SlaTimer
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


class ResponseTimes(BaseModel):
    """The means of one severity, and how many incidents each is taken over."""

    model_config = ConfigDict(from_attributes=True)

    mtta_seconds: float | None = Field(description="Mean time to acknowledge; null if none was")
    mttr_seconds: float | None = Field(description="Mean time to resolve; null if none was")
    acknowledged: int = Field(description="Incidents acknowledged: the MTTA's sample")
    resolved: int = Field(description="Incidents resolved (or closed): the MTTR's sample")


class NoisyKey(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    kind: IncidentKind
    incidents: int = Field(description="Incidents of this kind and key created in the window")
    occurrences: int = Field(description="Their occurrences, repeats included")
    reopens: int = Field(description="How many times they were reopened")
    last_incident_id: int = Field(description="The newest of them")
    last_seen_at: datetime = Field(description="When the key last occurred")


class Noisiest(BaseModel):
    """The keys to fix for good: the top (kind, key) pairs, most first, ties by key then kind."""

    model_config = ConfigDict(from_attributes=True)

    by_occurrences: list[NoisyKey]
    by_reopens: list[NoisyKey] = Field(description="Only keys reopened at least once")


class Stats(BaseModel):
    window: StatsWindow
    by_status: dict[IncidentStatus, int]
    by_severity: dict[Severity, int]
    mtta_seconds: float | None
    mttr_seconds: float | None
    sla: dict[Severity, SeverityCompliance]
    times: dict[Severity, ResponseTimes] = Field(description="MTTA and MTTR per severity")
    noisiest: Noisiest

    @classmethod
    def of(cls, stats: IncidentStats) -> "Stats":
        return cls(
            window=StatsWindow(from_=stats.since, to=stats.until),
            by_status=stats.by_status,
            by_severity=stats.by_severity,
            mtta_seconds=stats.mtta_seconds,
            mttr_seconds=stats.mttr_seconds,
            sla={sev: SeverityCompliance.of(tallies) for sev, tallies in stats.sla.items()},
            times={sev: ResponseTimes.model_validate(times) for sev, times in stats.times.items()},
            noisiest=Noisiest.model_validate(stats.noisiest),
        )
