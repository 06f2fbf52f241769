"""Liveness and database reachability."""

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import DatabaseDep
from api.errors import database_unavailable
from models.version import VERSION

router = APIRouter(tags=["health"])


@router.get("/health", responses={503: {"description": "The database cannot be reached"}})
async def get_health(database: DatabaseDep, request: Request) -> JSONResponse:
    """200 when the API can reach its database, 503 (in the error envelope) when it cannot."""
    started = time.perf_counter()
    try:
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "unreachable", reported, not raised
        return database_unavailable(database.dialect, exc)
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return JSONResponse(
        {
            "status": "ok",
            "version": VERSION,
            "database": {"status": "ok", "dialect": database.dialect, "latency_ms": latency_ms},
            "sse": {
                "subscribers": len(request.app.state.broadcaster.subscribers),
                "position": request.app.state.broadcaster.position,
            },
        }
    )
