"""Bodies of the Prefect endpoints (api/routes/prefect.py)."""

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from models.services.pipelines import Outcome


class FlowRunRef(BaseModel):
    """What a Prefect automation's webhook sends: only the run's id is read; the rest of the
    run comes from Prefect itself."""

    model_config = ConfigDict(extra="ignore")

    flow_run_id: UUID = Field(description="The id of a finished flow run on Intervene's Prefect")


class FlowRunTaken(BaseModel):
    flow_run_id: UUID
    incident_id: int | None = Field(description="The pipeline incident opened, counted or resolved")
    outcome: Outcome
    reason: str
