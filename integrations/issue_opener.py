"""Open a GitHub issue for each new incident and keep its URL in `issue_url`.

Runs after the incident is committed, so the incident never waits for GitHub and never depends
on it: a failure (GitHub down, bad token, a 4xx) becomes a timeline entry, nothing more. Off
unless INTERVENE_GITHUB_REPO and INTERVENE_GITHUB_TOKEN are set.
"""

import logging

import httpx

from models.base import utcnow
from models.db import Database, transaction
from models.incident import Incident
from models.settings import Settings

log = logging.getLogger("intervene.issues")
TIMEOUT_SECONDS = 10
ACTOR = "github"


def issue_body(incident: Incident) -> dict[str, object]:
    details = "\n".join(f"- **{k}**: `{v}`" for k, v in incident.details.items())
    playbooks = ", ".join(f"`{p}`" for p in incident.playbooks) or "none"
    return {
        "title": f"[{incident.severity.value}] {incident.summary}"[:250],
        "body": (
            f"Intervene incident **{incident.id}** ({incident.kind.value}, key "
            f"`{incident.key}`), opened {incident.created_at.isoformat()}.\n\n"
            f"{details}\n\nSuggested playbooks: {playbooks}\n"
        ),
    }


class IssueOpener:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def enabled(self) -> bool:
        return bool(self.settings.github_repo and self.settings.github_token)

    async def open_for(self, database: Database, incident_ids: list[int]) -> None:
        """One issue per incident that has none yet; each outcome goes on its timeline."""
        if not self.enabled or not incident_ids:
            return
        assert self.settings.github_token is not None
        url = f"{self.settings.github_api_url.rstrip('/')}/repos/{self.settings.github_repo}/issues"
        headers = {
            "Authorization": f"Bearer {self.settings.github_token.get_secret_value()}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, headers=headers) as http:
            for incident_id in incident_ids:
                try:
                    await self._open_one(database, http, url, incident_id)
                except Exception:  # never let a side effect break the caller's work
                    log.exception(
                        "issue for incident %s: recording the outcome failed", incident_id
                    )

    async def _open_one(
        self, database: Database, http: httpx.AsyncClient, url: str, incident_id: int
    ) -> None:
        async with transaction(database.reader) as session:
            incident = await session.get(Incident, incident_id)
            if incident is None or incident.issue_url:
                return
            payload = issue_body(incident) | {"labels": self.settings.github_labels}
        try:
            response = await http.post(url, json=payload)
            response.raise_for_status()
            issue_url = str(response.json()["html_url"])
            failure = None
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            issue_url = None
            status = getattr(getattr(exc, "response", None), "status_code", None)
            failure = f"{type(exc).__name__}" + (f" (HTTP {status})" if status else f": {exc}")
        async with transaction(database.writer) as session:
            incident = await session.get(Incident, incident_id, with_for_update=True)
            if incident is None:
                return
            if issue_url is not None:
                incident.note(
                    actor=ACTOR,
                    verb="issue_opened",
                    notes=f"Opened {issue_url}",
                    at=utcnow(),
                    changes={"issue_url": issue_url},
                )
            else:
                log.warning("could not open an issue for incident %s: %s", incident_id, failure)
                notes = f"Could not open a GitHub issue: {failure}"
                incident.note(actor=ACTOR, verb="issue_open_failed", notes=notes, at=utcnow())
