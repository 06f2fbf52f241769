"""Prefect flow runs reported to Intervene: for Prefect servers whose event stream Intervene
does not follow, an automation's webhook names a finished run and Intervene reads it back
from Prefect (docs/prefect-pipelines.md)."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL

from api.deps import DatabaseDep, SettingsDep
from api.openapi import Error
from api.schemas.prefect import FlowRunRef, FlowRunTaken
from integrations.prefect_api import NotInPrefect, PrefectReader, PrefectUnreachable
from models.db import Database
from models.errors import NotFound, Unavailable
from models.settings import Settings
from pipelines.intake import take_flow_run

router = APIRouter(prefix="/prefect", tags=["prefect"])

FlowRunId = Annotated[UUID, Path(description="A finished flow run's id")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Error, "description": "Prefect has no such flow run"}
}


def reader_of(settings: Settings) -> PrefectReader:
    """Prefect as the API's own settings name it (the launcher's server), read per request."""
    key, auth = PREFECT_API_KEY.value(), PREFECT_API_AUTH_STRING.value()
    return PrefectReader(
        PREFECT_API_URL.value(),
        ui_url=settings.prefect_ui_url,
        api_key=key.get_secret_value() if key else None,
        auth_string=auth.get_secret_value() if auth else None,
    )


async def _take(
    database: Database, settings: Settings, reader: PrefectReader, flow_run_id: UUID
) -> FlowRunTaken:
    try:
        taken = await take_flow_run(database, settings, reader, str(flow_run_id))
    except NotInPrefect as exc:
        raise NotFound(
            f"Prefect has no flow run {flow_run_id}", details={"flow_run_id": str(flow_run_id)}
        ) from exc
    except PrefectUnreachable as exc:
        raise Unavailable(str(exc), details={"flow_run_id": str(flow_run_id)}) from exc
    return FlowRunTaken(
        flow_run_id=flow_run_id,
        incident_id=taken.incident_id,
        outcome=taken.outcome,
        reason=taken.reason,
    )


@router.post("/flow-runs/{flow_run_id}")
async def take_flow_run_by_id(
    flow_run_id: FlowRunId, database: DatabaseDep, settings: SettingsDep
) -> FlowRunTaken:
    """Take in a finished Prefect flow run: open, count or resolve its pipeline incident."""
    return await _take(database, settings, reader_of(settings), flow_run_id)


@router.post("/flow-runs", responses=NOT_FOUND)
async def take_flow_run_in_body(
    body: FlowRunRef, database: DatabaseDep, settings: SettingsDep
) -> FlowRunTaken:
    """Take in the finished flow run a Prefect automation's webhook names in its body."""
    return await _take(database, settings, reader_of(settings), body.flow_run_id)
