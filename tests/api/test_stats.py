"""GET /api/stats through the real app, from incidents whose times are known."""

from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from models.base import utcnow
from models.db import Database
from models.enums import Role
from tests.auth import bearer, issue
from tests.factories import create_incident_at

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
NO_TIMERS = {"acknowledge": None, "mitigate": None, "resolve": None}
UNDECIDED = {"met": 0, "breached": 0, "pending": 0, "compliance": None}
NO_TIMES = {"mtta_seconds": None, "mttr_seconds": None, "acknowledged": 0, "resolved": 0}


@pytest.fixture
async def known(db: Database) -> datetime:
    """Five incidents, one of them older than a week; returns when the test began."""
    now = utcnow()
    # sev1, all in time, then closed
    await create_incident_at(db, created_at=now - 48 * HOUR, severity="sev1", after={
        "acknowledge": 2 * MINUTE, "mitigate": 20 * MINUTE, "resolve": 3 * HOUR,
        "close": 4 * HOUR,
    })  # fmt: skip
    # sev1 acknowledged late, resolved straight from there: mitigated late, resolved in time
    await create_incident_at(db, created_at=now - 24 * HOUR, severity="sev1", after={
        "acknowledge": 10 * MINUTE, "resolve": 3.5 * HOUR,
    })  # fmt: skip
    # sev2 still open after an hour: acknowledge breached, the rest pending
    await create_incident_at(db, created_at=now - HOUR, severity="sev2")
    # sev4, acknowledged after an hour: no SLA
    await create_incident_at(db, created_at=now - 3 * HOUR, severity="sev4", after={
        "acknowledge": HOUR,
    })  # fmt: skip
    # sev2 from ten days ago, resolved after two hours: only in a longer window
    await create_incident_at(db, created_at=now - 240 * HOUR, severity="sev2", after={
        "resolve": 2 * HOUR,
    })  # fmt: skip
    return now


async def test_stats_of_the_last_week(client: AsyncClient, known: datetime) -> None:
    response = await client.get("/api/stats")

    assert response.status_code == 200
    stats = response.json()
    window = {key: datetime.fromisoformat(value) for key, value in stats["window"].items()}
    assert list(window) == ["from", "to"]
    assert window["to"] - window["from"] == timedelta(days=7)
    assert known <= window["to"] <= utcnow()
    assert stats["by_status"] == {
        "open": 1, "acknowledged": 1, "mitigated": 0, "resolved": 1, "closed": 1,
    }  # fmt: skip
    assert stats["by_severity"] == {"sev1": 2, "sev2": 1, "sev3": 0, "sev4": 1}
    assert stats["mtta_seconds"] == pytest.approx((120 + 600 + 3600) / 3)
    assert stats["mttr_seconds"] == pytest.approx((3 * 3600 + 3.5 * 3600) / 2)
    assert stats["sla"] == {
        "sev1": {
            "acknowledge": {"met": 1, "breached": 1, "pending": 0, "compliance": 0.5},
            "mitigate": {"met": 1, "breached": 1, "pending": 0, "compliance": 0.5},
            "resolve": {"met": 2, "breached": 0, "pending": 0, "compliance": 1.0},
        },
        "sev2": {
            "acknowledge": {"met": 0, "breached": 1, "pending": 0, "compliance": 0.0},
            "mitigate": {"met": 0, "breached": 0, "pending": 1, "compliance": None},
            "resolve": {"met": 0, "breached": 0, "pending": 1, "compliance": None},
        },
        "sev3": dict.fromkeys(NO_TIMERS, UNDECIDED),
        "sev4": NO_TIMERS,
    }


async def test_mtta_and_mttr_per_severity(client: AsyncClient, known: datetime) -> None:
    times = (await client.get("/api/stats")).json()["times"]

    assert list(times) == ["sev1", "sev2", "sev3", "sev4"]
    assert times["sev1"] == {
        "mtta_seconds": pytest.approx((120 + 600) / 2),
        "mttr_seconds": pytest.approx((3 * 3600 + 3.5 * 3600) / 2),
        "acknowledged": 2,
        "resolved": 2,
    }
    assert times["sev2"] == NO_TIMES  # open: neither acknowledged nor resolved yet
    assert times["sev3"] == NO_TIMES
    assert times["sev4"] == {
        "mtta_seconds": pytest.approx(3600),
        "mttr_seconds": None,
        "acknowledged": 1,
        "resolved": 0,
    }


async def test_a_longer_window_takes_the_older_incident(
    client: AsyncClient, known: datetime
) -> None:
    stats = (await client.get("/api/stats", params={"days": 30})).json()

    assert sum(stats["by_status"].values()) == 5
    assert stats["by_severity"]["sev2"] == 2
    assert stats["mttr_seconds"] == pytest.approx((3 * 3600 + 3.5 * 3600 + 2 * 3600) / 3)
    # resolved after 2 h without an acknowledge: that counts as acknowledging late
    assert stats["sla"]["sev2"]["acknowledge"] == {
        "met": 0, "breached": 2, "pending": 0, "compliance": 0.0,
    }  # fmt: skip
    assert stats["sla"]["sev2"]["resolve"]["met"] == 1
    assert stats["times"]["sev2"] == {  # resolved without an acknowledge: no MTTA from it
        "mtta_seconds": None, "mttr_seconds": pytest.approx(2 * 3600),
        "acknowledged": 0, "resolved": 1,
    }  # fmt: skip


async def test_an_empty_window_has_zeros_and_no_means(client: AsyncClient) -> None:
    stats = (await client.get("/api/stats", params={"days": 1})).json()

    assert set(stats["by_status"].values()) == {0}
    assert set(stats["by_severity"].values()) == {0}
    assert (stats["mtta_seconds"], stats["mttr_seconds"]) == (None, None)
    assert stats["sla"]["sev1"]["resolve"] == UNDECIDED
    assert stats["times"] == dict.fromkeys(["sev1", "sev2", "sev3", "sev4"], NO_TIMES)


async def test_a_viewer_may_read_stats(client: AsyncClient, app: FastAPI, db: Database) -> None:
    headers = bearer(await issue(db, "viewer@x.io", Role.VIEWER))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
        assert (await http.get("/api/stats", headers=headers)).status_code == 200


async def test_stats_need_a_token(client: AsyncClient, app: FastAPI) -> None:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
        response = await http.get("/api/stats")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("days", ["0", "366", "-1", "week", "1.5"])
async def test_a_bad_window_is_422_in_the_envelope(client: AsyncClient, days: str) -> None:
    response = await client.get("/api/stats", params={"days": days})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [e["field"] for e in error["details"]["errors"]] == ["query.days"]
