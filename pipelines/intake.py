"""Taking in one finished flow run: read it from Prefect (never from whoever names it); one of
Intervene's own action runs ends its action (action_runs.py); any other is judged (watch.py)
and recorded (models/services/pipelines.py) in one write transaction. The read
happens before the transaction: nothing waits on the network while holding the database."""

from datetime import UTC

from integrations.prefect_api import FlowRunInfo, PrefectReader
from models.db import Database, transaction
from models.services import pipelines as service
from models.services.incidents import IncidentCap
from models.services.pipelines import Outcome, PipelineRun, Taken
from models.settings import Settings
from pipelines.action_runs import may_be_an_action_run, settle_action_run
from pipelines.watch import Verdict, Watch


def pipeline_run(info: FlowRunInfo, deployment: str) -> PipelineRun:
    return PipelineRun(
        flow_run_id=info.id,
        flow_name=info.flow_name,
        deployment=deployment,
        state_type=info.state_type,
        state_name=info.state_name,
        message=info.message,
        parameters=info.parameters,
        tags=info.tags,
        end_time=info.end_time.astimezone(UTC) if info.end_time else None,
        flow_run_url=info.url,
        name=info.name,
    )


async def take_flow_run(
    database: Database, settings: Settings, reader: PrefectReader, flow_run_id: str
) -> Taken:
    """Read the run from Prefect, then open, count, resolve or ignore. Raises NotInPrefect for
    a run Prefect does not have, PrefectUnreachable when it does not answer."""
    info = await reader.flow_run(flow_run_id)
    return await take(database, settings, info)


async def take(database: Database, settings: Settings, info: FlowRunInfo) -> Taken:
    if may_be_an_action_run(info):
        async with transaction(database.writer) as session:
            settled = await settle_action_run(session, info)
        if settled is not None:
            return settled
    judged = Watch.from_settings(settings).judge(
        flow_name=info.flow_name,
        deployment=info.deployment,
        state_type=info.state_type,
        tags=info.tags,
    )
    if judged.verdict is Verdict.IGNORE or info.deployment is None:
        return Taken(Outcome.IGNORED, None, judged.reason)
    run = pipeline_run(info, info.deployment)
    async with transaction(database.writer) as session:
        if judged.verdict is Verdict.FAILURE:
            cap = IncidentCap(
                limit=settings.incident_cap_per_key, window=settings.incident_cap_window
            )
            return await service.record_failure(
                session, run, severity=settings.pipeline_severity, cap=cap
            )
        return await service.record_success(session, run)
