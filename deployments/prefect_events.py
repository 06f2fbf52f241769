"""Following Prefect's events: finished flow runs of the platform's watched deployments open,
count and resolve `pipeline` incidents (pipelines/), a loop of `intervene services`.

Subscribes to `prefect.flow-run.Failed`, `.Crashed` and `.Completed` on the Prefect server's
event stream (`/api/events/out`), reads each run back from the API (the event names it; the
run's deployment, parameters and message come from Prefect) and takes it in. Any error drops
the subscription and subscribes again after a backoff (1 s doubling, at most
INTERVENE_PREFECT_EVENTS_BACKOFF_MAX_SECONDS). Each (re)subscription replays about the last
minute of events: taking a run in twice changes nothing (models/services/pipelines.py).
"""

import asyncio
import logging

from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL

from integrations.prefect_api import NotInPrefect, PrefectReader
from models.db import connect
from models.settings import Settings
from pipelines.intake import take_flow_run
from pipelines.watch import Watch

log = logging.getLogger("intervene.prefect_events")

EVENTS = ["prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.Completed"]
RUN_PREFIX = "prefect.flow-run."
FIRST_BACKOFF_SECONDS = 1.0


def prefect_reader(settings: Settings) -> PrefectReader:
    """A reader of the server Prefect's own settings name (environment or profile)."""
    key, auth = PREFECT_API_KEY.value(), PREFECT_API_AUTH_STRING.value()
    return PrefectReader(
        PREFECT_API_URL.value(),
        ui_url=settings.prefect_ui_url,
        api_key=key.get_secret_value() if key else None,
        auth_string=auth.get_secret_value() if auth else None,
    )


async def follow_prefect_events(settings: Settings) -> None:
    """Take in every finished flow run the server announces, for as long as it runs."""
    if not Watch.from_settings(settings).watches_anything:
        log.info(
            "no pipeline watched (INTERVENE_PIPELINE_DEPLOYMENTS, INTERVENE_PIPELINE_TAGS): "
            "not following Prefect's events"
        )
        return
    database = connect(settings.database_url, pool_size=1, max_overflow=2)
    reader = prefect_reader(settings)
    backoff = FIRST_BACKOFF_SECONDS
    try:
        while True:
            try:
                subscription = get_events_subscriber(
                    filter=EventFilter(event=EventNameFilter(name=EVENTS)),  # type: ignore[call-arg]
                    reconnection_attempts=0,  # our own loop reconnects, with a backoff
                )
                async with subscription as events:
                    log.info("following Prefect's flow run events at %s", reader.api_url)
                    backoff = FIRST_BACKOFF_SECONDS
                    async for event in events:
                        flow_run_id = event.resource.id.removeprefix(RUN_PREFIX)
                        try:
                            taken = await take_flow_run(database, settings, reader, flow_run_id)
                        except NotInPrefect:
                            log.warning("flow run %s is gone from Prefect: skipped", flow_run_id)
                            continue
                        log.info(
                            "flow run %s (%s): %s, %s",
                            flow_run_id,
                            event.event,
                            taken.outcome.value,
                            taken.reason,
                        )
                log.warning("Prefect closed the event stream")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # server down, a blip, the database: subscribe again
                log.warning("following Prefect's events failed (%s: %s)", type(exc).__name__, exc)
            log.info("subscribing again in %.0f s", backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, settings.prefect_events_backoff_max_seconds)
    finally:
        await database.dispose()


if __name__ == "__main__":  # the loop alone (used by the tests and for a look)
    from models.settings import get_settings

    logging.basicConfig(level=logging.INFO)
    asyncio.run(follow_prefect_events(get_settings()))
