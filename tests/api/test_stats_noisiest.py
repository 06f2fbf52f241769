"""The noisiest keys of GET /api/stats: grouped by (kind, key) over the window's incidents, most
occurrences and most reopens first, ties by key, from incidents whose history is known."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from models.base import utcnow
from models.db import Database, transaction
from models.enums import IncidentKind, Severity, Verb
from models.services import incidents

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Made:
    id: int
    last_seen_at: datetime


async def noisy(
    db: Database,
    *,
    kind: str,
    key: str,
    created_at: datetime,
    repeats: int = 0,
    reopens: int = 0,
    resolved: bool = False,
) -> Made:
    """An incident reported `repeats` more times a minute apart, then resolved and reopened
    `reopens` times (and resolved for good if `resolved`), through the services."""
    new = incidents.NewIncident(
        kind=IncidentKind(kind), key=key, severity=Severity.SEV3, summary="A noisy key"
    )
    async with transaction(db.writer) as session:
        incident, _ = await incidents.create_incident(
            session, new=new, actor="tests", at=created_at
        )
        for n in range(1, repeats + 1):
            await incidents.create_incident(
                session, new=new, actor="tests", at=created_at + n * MINUTE
            )
        later = created_at + (repeats + 1) * MINUTE
        verbs = [Verb.RESOLVE, Verb.REOPEN] * reopens + ([Verb.RESOLVE] if resolved else [])
        for n, verb in enumerate(verbs):
            await incidents.transition_incident(
                session, incident_id=incident.id, verb=verb, actor="tests", at=later + n * MINUTE
            )
        return Made(incident.id, created_at + repeats * MINUTE)


@pytest.fixture
async def made(db: Database) -> dict[str, Made]:
    """Six keys' incidents of the last week, and an older, noisier one of `bravo`."""
    now = utcnow()
    old = await noisy(db, kind="invariant", key="bravo", created_at=now - 10 * DAY,
                      repeats=19, reopens=5, resolved=True)  # fmt: skip
    bravo_1 = await noisy(db, kind="invariant", key="bravo", created_at=now - 3 * DAY,
                          repeats=4, reopens=1, resolved=True)  # fmt: skip
    alpha = await noisy(db, kind="alert", key="alpha", created_at=now - 2 * DAY,
                        repeats=6, reopens=3, resolved=True)  # fmt: skip
    bravo_2 = await noisy(db, kind="invariant", key="bravo", created_at=now - DAY, repeats=1)
    charlie = await noisy(db, kind="invariant", key="charlie", created_at=now - 5 * DAY)
    delta = await noisy(db, kind="budget", key="delta", created_at=now - 4 * DAY,
                        repeats=2, reopens=1)  # fmt: skip
    # the same key under another kind is another problem
    alpha_inv = await noisy(db, kind="invariant", key="alpha", created_at=now - 6 * DAY)
    return {"old": old, "bravo_1": bravo_1, "alpha": alpha, "bravo_2": bravo_2,
            "charlie": charlie, "delta": delta, "alpha_inv": alpha_inv}  # fmt: skip


def row(kind: str, key: str, counts: tuple[int, int, int], last: Made) -> dict[str, Any]:
    """A listed key as it should read: (incidents, occurrences, reopens), and its newest."""
    incidents, occurrences, reopens = counts
    return {
        "key": key,
        "kind": kind,
        "incidents": incidents,
        "occurrences": occurrences,
        "reopens": reopens,
        "last_incident_id": last.id,
        "last_seen_at": last.last_seen_at,
    }


def read(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r | {"last_seen_at": datetime.fromisoformat(r["last_seen_at"])} for r in rows]


async def noisiest(client: AsyncClient, **params: int) -> dict[str, list[dict[str, Any]]]:
    response = await client.get("/api/stats", params=params)
    assert response.status_code == 200, response.text
    body = response.json()["noisiest"]
    return {name: read(rows) for name, rows in body.items()}


async def test_the_noisiest_keys_of_the_last_week(
    client: AsyncClient, made: dict[str, Made]
) -> None:
    lists = await noisiest(client)

    assert list(lists) == ["by_occurrences", "by_reopens"]
    alpha = row("alert", "alpha", (1, 7, 3), made["alpha"])
    bravo = row("invariant", "bravo", (2, 7, 1), made["bravo_2"])
    delta = row("budget", "delta", (1, 3, 1), made["delta"])
    assert lists["by_occurrences"] == [
        alpha,  # ties with bravo at 7: by key
        bravo,  # two incidents, 5 + 2 occurrences; the ten-day-old one is outside the week
        delta,
        row("invariant", "alpha", (1, 1, 0), made["alpha_inv"]),
        row("invariant", "charlie", (1, 1, 0), made["charlie"]),
    ]
    assert lists["by_reopens"] == [alpha, bravo, delta]  # none unreopened; bravo, delta tie


async def test_top_cuts_each_list(client: AsyncClient, made: dict[str, Made]) -> None:
    lists = await noisiest(client, top=2)

    assert [(r["kind"], r["key"]) for r in lists["by_occurrences"]] == [
        ("alert", "alpha"),
        ("invariant", "bravo"),
    ]
    assert [(r["kind"], r["key"]) for r in lists["by_reopens"]] == [
        ("alert", "alpha"),
        ("invariant", "bravo"),
    ]


async def test_a_longer_window_counts_the_older_incidents_of_a_key(
    client: AsyncClient, made: dict[str, Made]
) -> None:
    lists = await noisiest(client, days=30, top=1)

    bravo = row("invariant", "bravo", (3, 27, 6), made["bravo_2"])
    assert lists == {"by_occurrences": [bravo], "by_reopens": [bravo]}


async def test_an_empty_window_has_no_noisy_key(client: AsyncClient) -> None:
    assert await noisiest(client, days=1) == {"by_occurrences": [], "by_reopens": []}


@pytest.mark.parametrize("top", ["0", "51", "-3", "many", "2.5"])
async def test_a_bad_top_is_422_in_the_envelope(client: AsyncClient, top: str) -> None:
    response = await client.get("/api/stats", params={"top": top})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [e["field"] for e in error["details"]["errors"]] == ["query.top"]
