"""The search cluster: an Elasticsearch client from the settings, and what to check first.

The official client refuses a cluster of another major version (a 9.x client answers an 8.x
server with `media_type_header_exception`): install the client whose major version matches the
cluster (`pip install "elasticsearch>=8,<9"` for an 8.x cluster).
"""

from elastic_transport import HttpxAsyncHttpNode
from elasticsearch import ApiError, AsyncElasticsearch, TransportError, UnsupportedProductError

from models.settings import Settings


class SearchNotConfigured(RuntimeError):
    pass


def es_client(settings: Settings) -> AsyncElasticsearch:
    if not settings.elasticsearch_url:
        raise SearchNotConfigured("Elasticsearch is not configured (INTERVENE_ELASTICSEARCH_URL)")
    auth: dict[str, object] = {}
    if settings.elasticsearch_api_key is not None:
        auth["api_key"] = settings.elasticsearch_api_key.get_secret_value()
    elif settings.elasticsearch_username and settings.elasticsearch_password is not None:
        auth["basic_auth"] = (
            settings.elasticsearch_username,
            settings.elasticsearch_password.get_secret_value(),
        )
    return AsyncElasticsearch(
        settings.elasticsearch_url,
        request_timeout=settings.elasticsearch_timeout_seconds,
        # the flows retry what is transient themselves (flows/retries.py), with backoff and a
        # line in the run's logs; the client's own retry is immediate and silent
        max_retries=0,
        retry_on_status=(),
        node_class=HttpxAsyncHttpNode,  # httpx is here already; the default needs aiohttp
        **auth,  # type: ignore[arg-type]
    )


def describe(exc: Exception) -> str:
    if isinstance(exc, UnsupportedProductError):
        return (
            "the server is not Elasticsearch (no X-Elastic-Product header) or is a version this"
            " client does not support"
        )
    if isinstance(exc, ApiError):
        error = exc.body.get("error", {}) if isinstance(exc.body, dict) else {}
        kind = error.get("type", "") if isinstance(error, dict) else ""
        return f"Elasticsearch answered {exc.meta.status}{f' {kind}' if kind else ''}"
    if isinstance(exc, TransportError):
        return f"Elasticsearch unreachable: {type(exc).__name__}"
    return f"{type(exc).__name__}: {exc}"


async def index_problem(settings: Settings, index: str) -> str | None:
    """Why an action on `index` cannot run now (no cluster, unreachable, no such index)."""
    try:
        es = es_client(settings)
    except SearchNotConfigured as exc:
        return str(exc)
    try:
        if not await es.indices.exists(index=index):
            return f"index {index!r} does not exist on {settings.elasticsearch_url}"
    except Exception as exc:  # unreachable, refused, another product or major version
        return describe(exc)
    finally:
        await es.close()
    return None
