"""Held alerts (models/alert_hold.py): silence matching, holding, and the release of holds whose
silence ended while the alert still fired (opened then, once)."""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models.alert_hold import AlertHold, HoldReason, Silence
from models.enums import ACTIVE_STATUSES, IncidentKind, Severity
from models.errors import RateLimited
from models.incident import Incident
from models.services.incidents import IncidentCap, NewIncident, create_incident

# Whether an alert about these dbt nodes is downstream of an incident about those (lineage).
Downstream = Callable[[tuple[str, ...], tuple[str, ...]], bool]


@dataclass(frozen=True)
class Subject:
    """What a silence's matchers look at."""

    kind: str
    key: str
    source: str
    labels: Mapping[str, str]


def silences_it(silence: Silence, subject: Subject, at: datetime) -> bool:
    if not silence.active_at(at):
        return False
    matchers = silence.matchers
    for field in ("kind", "source"):
        if matchers.get(field) and matchers[field] != getattr(subject, field):
            return False
    if matchers.get("key") and not fnmatchcase(subject.key, matchers["key"]):
        return False
    wanted: dict[str, str] = matchers.get("labels") or {}
    return all(
        name in subject.labels and fnmatchcase(subject.labels[name], pattern)
        for name, pattern in wanted.items()
    )


def silence_of(silences: Iterable[Silence], subject: Subject, at: datetime) -> Silence | None:
    """The silence that keeps `subject` quiet at `at` (the one that ends last), if any."""
    found = [silence for silence in silences if silences_it(silence, subject, at)]
    return max(found, key=lambda silence: silence.ends_at) if found else None


async def active_silences(session: AsyncSession, at: datetime) -> list[Silence]:
    query = select(Silence).where(Silence.starts_at <= at, Silence.ends_at > at)
    return list(await session.scalars(query))


def opens(new: NewIncident) -> dict[str, Any]:
    """A NewIncident as the JSON a hold keeps until its release."""
    return {
        "severity": new.severity.value,
        "summary": new.summary,
        "details": new.details,
        "playbooks": new.playbooks,
        "metadata": new.metadata,
    }


def new_incident(hold: AlertHold) -> NewIncident:
    kept = hold.opens
    return NewIncident(
        kind=IncidentKind(hold.kind),
        key=hold.key,
        severity=Severity(kept["severity"]),
        summary=kept["summary"],
        details=kept.get("details") or {},
        playbooks=kept.get("playbooks") or [],
        metadata=kept.get("metadata") or {},
    )


async def hold(
    session: AsyncSession,
    *,
    new: NewIncident,
    source: str,
    reason: HoldReason,
    at: datetime,
    count: int = 1,
    silence_id: int | None = None,
    incident_id: int | None = None,
) -> AlertHold:
    """Hold an alert whose key has no unreleased hold; a racing process that held it first
    wins, and this one counts on its hold."""
    held = AlertHold(
        kind=new.kind.value,
        key=new.key,
        source=source,
        reason=reason.value,
        silence_id=silence_id,
        incident_id=incident_id,
        occurrences=count,
        firing=True,
        first_seen_at=at,
        last_seen_at=at,
        opens=opens(new),
    )
    try:
        async with session.begin_nested():
            session.add(held)
            await session.flush()
    except IntegrityError:
        found = await unreleased(session, [(new.kind.value, new.key)])
        held = found[(new.kind.value, new.key)]
        held.occurrences += count
        held.last_seen_at = at
        held.firing = True
    return held


async def unreleased(
    session: AsyncSession, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], AlertHold]:
    """The unreleased holds of these (kind, key)s, locked."""
    if not keys:
        return {}
    wanted = set(keys)
    query = (
        select(AlertHold)
        .where(AlertHold.released_at.is_(None), AlertHold.key.in_(sorted({k for _, k in keys})))
        .order_by(AlertHold.id)
        .with_for_update()
    )
    return {
        (held.kind, held.key): held
        for held in await session.scalars(query)
        if (held.kind, held.key) in wanted
    }


async def upstream_incidents(session: AsyncSession) -> list[Incident]:
    """The active incidents about dbt nodes (what a failure downstream may join)."""
    query = select(Incident).where(
        Incident.status.in_(ACTIVE_STATUSES), Incident.metadata_["dbt_nodes"].is_not(None)
    )
    return [
        incident for incident in await session.scalars(query) if incident.metadata_.get("dbt_nodes")
    ]


def upstream_of(
    upstream: Iterable[Incident], key: str, nodes: tuple[str, ...], downstream: Downstream
) -> Incident | None:
    """The first of `upstream` (other than `key`'s own) that `nodes` are downstream of."""
    for incident in upstream:
        if incident.key != key and downstream(nodes, tuple(incident.metadata_["dbt_nodes"])):
            return incident
    return None


async def related_to(session: AsyncSession, incident_id: int) -> list[AlertHold]:
    """The downstream alerts that joined this incident (dbt lineage), in the order they came."""
    query = (
        select(AlertHold)
        .where(AlertHold.incident_id == incident_id, AlertHold.reason == HoldReason.RELATED.value)
        .order_by(AlertHold.id)
        .limit(200)
    )
    return list(await session.scalars(query))


async def release_ended(
    session: AsyncSession, *, at: datetime, cap: IncidentCap, limit: int = 100
) -> list[int]:
    """Release the holds whose silence has ended: one still firing opens its incident now (a
    repeat counts on the active one), once; another silence that matches takes it over. The ids
    of the incidents opened or counted."""
    ended = (
        select(AlertHold)
        .outerjoin(Silence, Silence.id == AlertHold.silence_id)
        .where(AlertHold.released_at.is_(None), AlertHold.reason == HoldReason.SILENCED.value)
        .where((Silence.id.is_(None)) | (Silence.ends_at <= at))
        .order_by(AlertHold.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=AlertHold)
    )
    holds = list(await session.scalars(ended))
    if not holds:
        return []
    silences = await active_silences(session, at)
    touched: list[int] = []
    for held in holds:
        labels = (held.opens.get("details") or {}).get("labels") or {}
        subject = Subject(kind=held.kind, key=held.key, source=held.source, labels=labels)
        if (still := silence_of(silences, subject, at)) is not None:
            held.silence_id = still.id
            continue
        held.released_at = at
        if not held.firing:
            continue
        try:
            incident, _ = await create_incident(
                session,
                new=new_incident(held),
                actor=held.source,
                cap=cap,
                at=at,
            )
        except RateLimited:
            continue  # the flood stays shut: released, nothing opened
        held.opened_incident_id = incident.id
        incident.note(
            actor=held.source,
            verb="silence_ended",
            notes=f"still firing when its silence ended ({held.occurrences} while silenced)",
            at=at,
        )
        touched.append(incident.id)
    await session.flush()
    return touched
