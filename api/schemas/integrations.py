"""What the alert endpoints answer: each alert taken (what became of it) and each refused."""

from pydantic import BaseModel, Field

from alerts.intake import Intake


class TakenRead(BaseModel):
    index: int = Field(description="Position in the request's alerts")
    key: str
    outcome: str = Field(
        description="opened, counted, reopened, resolved, acknowledged, silenced, pending, "
        "related, ignored or capped"
    )
    incident_id: int | None = None
    silence_id: int | None = None


class RefusedRead(BaseModel):
    index: int
    field: str
    message: str


class AlertsTaken(BaseModel):
    source: str
    received: int = Field(description="Alerts in the request")
    taken: list[TakenRead]
    refused: list[RefusedRead] = Field(description="Alerts not taken, and why (the rest are)")
    truncated: int = Field(default=0, description="Alerts the sender left out (max_alerts)")
    ignored: int = Field(default=0, description="Items that say nothing (dbt: skipped, no-op)")

    @classmethod
    def of(
        cls,
        source: str,
        intake: Intake,
        truncated: int = 0,
        *,
        positions: list[int] | None = None,
        ignored: int = 0,
    ) -> "AlertsTaken":
        """`positions`: each taken alert's index in the request, where the request holds
        items that are neither taken nor refused (dbt's skipped results, `ignored`)."""
        refused_at = {refusal.index for refusal in intake.refused}
        if positions is None:
            everything = range(len(intake.taken) + len(refused_at))
            positions = [n for n in everything if n not in refused_at]
        return cls(
            source=source,
            received=len(positions) + len(refused_at) + ignored,
            taken=[
                TakenRead(
                    index=index,
                    key=item.key,
                    outcome=item.outcome.value,
                    incident_id=item.incident_id,
                    silence_id=item.silence_id,
                )
                for index, item in zip(positions, intake.taken, strict=True)
            ],
            refused=[RefusedRead(**vars(refusal)) for refusal in intake.refused],
            truncated=truncated,
            ignored=ignored,
        )


class PagerDutyAccepted(BaseModel):
    """PagerDuty's own answer to an event it took."""

    status: str = Field(examples=["success"])
    message: str = Field(examples=["Event processed"])
    dedup_key: str


class PagerDutyRefused(BaseModel):
    """PagerDuty's own answer to an event it refused (400), or to an unknown routing key (401)
    or one that may not create incidents (403)."""

    status: str = Field(examples=["invalid event"])
    message: str = Field(examples=["Event object is invalid"])
    errors: list[str]
