"""Reading Prefect's REST API: a flow run (with its flow's and deployment's names) and a
deployment, for the pipeline watch (pipelines/) and retry_flow_run's plan.

Plain httpx, no Prefect import (the layers below api and flows import no Prefect). The server is
`PREFECT_API_URL`; `PREFECT_API_KEY` (Bearer) or `PREFECT_API_AUTH_STRING` (Basic) authenticate
when set. Callers that hold Prefect's own settings pass them in (a profile may set them).
"""

import base64
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

TIMEOUT_SECONDS = 10.0


class PrefectUnreachable(RuntimeError):
    """No answer from the Prefect server (down, refused, a 5xx, or not configured)."""


class NotInPrefect(LookupError):
    """The server answered, and has no such flow run or deployment."""


@dataclass(frozen=True)
class FlowRunInfo:
    id: str
    name: str
    flow_name: str
    deployment: str | None  # `<flow>/<deployment>`, None for a run outside any deployment
    state_type: str  # COMPLETED, FAILED, CRASHED...
    state_name: str
    message: str | None
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    end_time: datetime | None = None
    url: str | None = None  # the run's page in the Prefect UI


class PrefectReader:
    def __init__(
        self,
        api_url: str | None = None,
        *,
        ui_url: str | None = None,
        api_key: str | None = None,
        auth_string: str | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.api_url = (api_url or os.environ.get("PREFECT_API_URL") or "").rstrip("/") or None
        self.ui_url = (ui_url or "").rstrip("/") or (
            self.api_url.removesuffix("/api") if self.api_url else None
        )
        api_key = api_key or os.environ.get("PREFECT_API_KEY")
        auth_string = auth_string or os.environ.get("PREFECT_API_AUTH_STRING")
        self.headers: dict[str, str] = {}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        elif auth_string:
            encoded = base64.b64encode(auth_string.encode()).decode()
            self.headers["Authorization"] = f"Basic {encoded}"
        self.timeout = timeout

    def run_url(self, flow_run_id: str) -> str | None:
        return f"{self.ui_url}/runs/flow-run/{flow_run_id}" if self.ui_url else None

    async def _get(self, http: httpx.AsyncClient, path: str, what: str) -> dict[str, Any]:
        try:
            response = await http.get(path)
        except httpx.HTTPError as exc:
            raise PrefectUnreachable(
                f"Prefect at {self.api_url} is unreachable: {type(exc).__name__}"
            ) from exc
        if response.status_code == 404:
            raise NotInPrefect(f"Prefect has no {what}")
        if response.status_code >= 400:
            raise PrefectUnreachable(
                f"Prefect at {self.api_url} answered {response.status_code} for {what}"
            )
        body: dict[str, Any] = response.json()
        return body

    def _client(self) -> httpx.AsyncClient:
        if not self.api_url:
            raise PrefectUnreachable("PREFECT_API_URL is not set: no Prefect server to read")
        return httpx.AsyncClient(base_url=self.api_url, headers=self.headers, timeout=self.timeout)

    async def flow_run(self, flow_run_id: str) -> FlowRunInfo:
        """The flow run, its flow's name and its deployment's `<flow>/<deployment>` name."""
        async with self._client() as http:
            run = await self._get(http, f"/flow_runs/{flow_run_id}", f"flow run {flow_run_id}")
            flow = await self._get(http, f"/flows/{run['flow_id']}", f"flow {run['flow_id']}")
            deployment = None
            if run.get("deployment_id"):
                try:
                    found = await self._get(
                        http, f"/deployments/{run['deployment_id']}", "deployment"
                    )
                    deployment = f"{flow['name']}/{found['name']}"
                except NotInPrefect:  # deleted since: the run is still the run
                    deployment = None
        state = run.get("state") or {}
        end = run.get("end_time") or state.get("timestamp")
        return FlowRunInfo(
            id=str(run["id"]),
            name=str(run.get("name") or ""),
            flow_name=str(flow["name"]),
            deployment=deployment,
            state_type=str(state.get("type") or run.get("state_type") or ""),
            state_name=str(state.get("name") or run.get("state_name") or ""),
            message=state.get("message") or None,
            parameters=dict(run.get("parameters") or {}),
            tags=list(run.get("tags") or []),
            end_time=datetime.fromisoformat(end) if end else None,
            url=self.run_url(str(run["id"])),
        )

    async def deployment(self, name: str) -> dict[str, Any]:
        """The deployment `<flow>/<deployment>` as Prefect describes it."""
        async with self._client() as http:
            return await self._get(http, f"/deployments/name/{name}", f"deployment {name}")
