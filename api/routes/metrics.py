"""GET /metrics: Prometheus metrics (api/metrics.py says which), at the root, not under /api."""

from fastapi import APIRouter, Request, Response

from api.deps import DatabaseDep
from api.metrics import Metrics, scraped

router = APIRouter(tags=["metrics"])


# Not in the OpenAPI document: its answer is Prometheus' format, not the API's JSON.
@router.get("/metrics", include_in_schema=False)
async def get_metrics(request: Request, database: DatabaseDep) -> Response:
    """This process's counters and the database's gauges, read now."""
    state = request.app.state
    metrics: Metrics = state.metrics
    families = await scraped(database, state.checks, state.broadcaster)
    body, content_type = metrics.exposition(request.headers.get("accept"), families)
    return Response(body, headers={"Content-Type": content_type})
