"""GET /api/health reports the database, and says so in the envelope when it is unreachable."""

from httpx import ASGITransport, AsyncClient

from api.main import create_app
from models.settings import Settings


async def test_health_reports_the_database(client: AsyncClient, backend: str) -> None:
    response = await client.get("/api/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["database"]["dialect"] == backend
    assert body["database"]["latency_ms"] >= 0


async def test_health_is_503_when_the_database_is_unreachable() -> None:
    settings = Settings(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/nowhere",
        auto_migrate=False,
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get("/api/health")

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "unavailable"
    assert error["details"]["database"]["status"] == "error"
    assert "nobody" not in response.text
