"""The incident report on Prefect, a loop of `intervene services` (deployments/services.py).

An incident's report, the Markdown of `GET /api/incidents/{id}/report` laid out by the same
api/report.py, is published as the markdown artifact `incident-<id>-report` on the flow run
of the incident's last action that has one: once the incident is resolved or closed (or
someone saved its root cause and follow-ups), and again each time its timeline moves on (a
report version saved, the incident closed, an action's outcome...). Prefect keeps every
publication as a version of the key and shows the latest on the run's page and under
Artifacts.

What was published is remembered per incident (the newest timeline entry it showed,
models/services/report_artifacts.py), and marked only once Prefect took it: a publication
Prefect did not take (down, or no answer within PUBLISH_SECONDS) stays due and is tried again
on a later pass, after a backoff while Prefect stays out. One Prefect refuses (4xx) is logged
and tried again after REFUSED_RETRY, or when the services restart. Nothing in the API waits for
Prefect. Two services processes may publish the same version twice: harmless.

It polls: a pass every INTERVENE_REPORT_ARTIFACT_POLL_SECONDS (5 s), so a report shows in
Prefect within about that of the change; a pass that published a whole batch goes on at once.
"""

import asyncio
import logging
import time
from typing import Any, Protocol
from uuid import UUID

import httpx
from prefect import get_client
from prefect.client.schemas.actions import ArtifactCreate

from api.report import markdown, report_of
from flows.artifacts import incident_url
from models.base import utcnow
from models.db import Database, connect, transaction
from models.services import report_artifacts as service
from models.settings import Settings

log = logging.getLogger("intervene.report_artifacts")

PER_PASS = 20
PUBLISH_SECONDS = 10.0  # Prefect's client retries a server that is down for a minute or more
OUTAGE_BACKOFF_MAX = 60.0
REFUSED_RETRY = 900.0


def report_key(incident_id: int) -> str:
    return f"incident-{incident_id}-report"  # Prefect keys: lowercase letters, digits, dashes


class PrefectUnavailable(Exception):
    """Prefect did not take a publication: down, failing (5xx), or no answer in time."""

    def __init__(self, incident_id: int, reason: str) -> None:
        super().__init__(f"the report of incident {incident_id} was not published: {reason}")
        self.incident_id = incident_id


class ArtifactWriter(Protocol):  # PrefectClient, or the tests' stand-in
    async def create_artifact(self, artifact: ArtifactCreate) -> Any: ...


class Publisher:
    def __init__(self, database: Database, settings: Settings, prefect: ArtifactWriter) -> None:
        self.database, self.settings, self.prefect = database, settings, prefect
        self.refused: dict[int, float] = {}  # incident -> monotonic time to try it again

    async def pass_once(self) -> int:
        """Publish the due reports, oldest first; how many. Raises PrefectUnavailable at the
        first one Prefect did not take: the rest would wait as long, and all stay due."""
        now = time.monotonic()
        self.refused = {i: at for i, at in self.refused.items() if at > now}
        async with transaction(self.database.reader) as session:
            due = await service.due_reports(session, limit=PER_PASS, skip=frozenset(self.refused))
        published = 0
        for incident_id in due:
            published += await self.publish(incident_id)
        return published

    async def publish(self, incident_id: int) -> bool:
        """The incident's report on its last action run; False when there is nothing to
        publish or Prefect refused it."""
        now = utcnow()
        async with transaction(self.database.reader) as session:
            due = await service.publication(session, incident_id, now)
        if due is None:
            return False
        report = report_of(due.facts, self.settings.sla_targets, now)
        url = incident_url(self.settings.public_url, incident_id)
        about = f"[incident {incident_id}]({url})" if url else f"incident {incident_id}"
        version = f", version {report.writing.version}" if report.writing.version else ""
        try:
            artifact = ArtifactCreate(
                key=report_key(incident_id),
                type="markdown",
                description=f"The report of {about} ({report.status}{version})",
                data=markdown(report),
                flow_run_id=UUID(due.flow_run_id),
            )
            async with asyncio.timeout(PUBLISH_SECONDS):
                await self.prefect.create_artifact(artifact)
        except TimeoutError as exc:
            reason = f"Prefect did not answer within {PUBLISH_SECONDS:g} s"
            raise PrefectUnavailable(incident_id, reason) from exc
        except httpx.HTTPStatusError as exc:
            code = exc.response.status_code
            if code >= 500 or code in (408, 429):
                raise PrefectUnavailable(incident_id, f"Prefect answered HTTP {code}") from exc
            return self._refused(incident_id, f"HTTP {code}: {exc.response.text[:200]}")
        except httpx.HTTPError as exc:
            reason = f"Prefect unreachable ({type(exc).__name__}: {exc})"
            raise PrefectUnavailable(incident_id, reason) from exc
        except ValueError as exc:  # not a flow run id Prefect would know
            return self._refused(incident_id, str(exc))
        async with transaction(self.database.writer) as session:
            await service.mark_published(
                session,
                incident_id,
                entry_id=due.entry_id,
                flow_run_id=due.flow_run_id,
                at=utcnow(),
            )
        return True

    def _refused(self, incident_id: int, reason: str) -> bool:
        log.warning(
            "Prefect refused the report of incident %s: %s; trying again in %.0f s",
            incident_id,
            reason,
            REFUSED_RETRY,
        )
        self.refused[incident_id] = time.monotonic() + REFUSED_RETRY
        return False


async def publish_forever(settings: Settings) -> None:
    database = connect(settings.database_url, pool_size=1, max_overflow=1)
    try:
        async with get_client() as prefect:
            await run(Publisher(database, settings, prefect), settings.report_artifact_poll_seconds)
    finally:
        await database.dispose()


async def run(publisher: Publisher, poll: float) -> None:
    """Passes for ever, every `poll` seconds; while Prefect is out, the wait doubles up to
    OUTAGE_BACKOFF_MAX."""
    backoff = poll
    while True:
        try:
            published = await publisher.pass_once()
        except PrefectUnavailable as exc:
            log.warning("%s; trying again in %.0f s", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max(poll, OUTAGE_BACKOFF_MAX))
            continue
        except Exception:  # the database may be back on the next pass
            log.exception("report publication pass failed")
            published = 0
        backoff = poll
        if published < PER_PASS:
            await asyncio.sleep(poll)
