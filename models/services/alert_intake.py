"""Taking in one request's alerts: each opens, counts, reopens, resolves or acknowledges an
incident, or is held (silenced, pending its threshold, related to an upstream incident).

A storm arrives as groups of alerts whose keys already have incidents, so the common path is a
count: one locked read of the active incidents of every key in the request (when every alert
is a firing repeat of one of them, nothing else is read: holds, silences and lineage cannot change
a count), then one UPDATE, one timeline row and one event per key however many of its alerts the
request carries, written in one statement on PostgreSQL (`count_repeats`). Keys that open a
new incident are inserted in one statement (models/services/batch_open.py); what the batch
cannot settle (a key near its cap, a key another request took meanwhile) goes the exact way of
`create_incident`.

Each key's alerts are taken in the order given; the answer lists what became of each alert.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Select, String, bindparam, func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models.alert import Alert, Signal
from models.alert_hold import AlertHold, HoldReason, Silence
from models.base import isoformat
from models.enums import ACTIVE_STATUSES, IncidentKind, IncidentStatus, Severity, Verb
from models.errors import RateLimited
from models.incident import Incident, Recurrence
from models.services import alert_holds as holds
from models.services.batch_open import insert_incidents, near_cap
from models.services.incidents import (
    IncidentCap,
    NewIncident,
    count_repeats,
    create_incident,
)
from models.services.storm_count import Repeats, count_all

Downstream = holds.Downstream
Key = tuple[IncidentKind, str]


@dataclass(frozen=True)
class Threshold:
    """Open only after `occurrences` firing alerts within `window` (Alertmanager's `for`)."""

    occurrences: int
    window: timedelta


@dataclass(frozen=True)
class Routed:
    """An alert with its routing rule applied: what it opens and what governs it."""

    alert: Alert
    kind: IncidentKind
    severity: Severity
    playbooks: tuple[str, ...] = ()
    rule: str | None = None
    open_after: Threshold | None = None
    flap_window: timedelta = timedelta(minutes=30)

    def new_incident(self) -> NewIncident:
        alert = self.alert
        metadata: dict[str, object] = {"source": alert.source.value}
        if self.rule:
            metadata["rule"] = self.rule
        if alert.params:
            metadata["playbook_params"] = alert.params
        if alert.nodes:
            metadata["dbt_nodes"] = list(alert.nodes)
        return NewIncident(
            kind=self.kind,
            key=alert.key,
            severity=self.severity,
            summary=alert.summary,
            details=alert.details,
            playbooks=list(self.playbooks),
            metadata=metadata,
        )


class Outcome(StrEnum):
    OPENED = "opened"
    COUNTED = "counted"
    REOPENED = "reopened"  # fired again soon after its source resolved it (flap control)
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    SILENCED = "silenced"
    PENDING = "pending"  # under its rule's threshold
    RELATED = "related"  # joined an upstream incident
    IGNORED = "ignored"  # a resolve or acknowledge of nothing this source opened
    CAPPED = "capped"  # the per-key cap refused a new incident


# outcomes that open nothing and notify no one: counted in metrics by reason
QUIET = frozenset(
    {Outcome.SILENCED, Outcome.PENDING, Outcome.RELATED, Outcome.IGNORED, Outcome.CAPPED}
)


@dataclass(frozen=True)
class Taken:
    key: str
    outcome: Outcome
    incident_id: int | None = None
    silence_id: int | None = None


@dataclass
class _Active:
    """An active incident as the count path needs it (no ORM object: a storm counts on a
    hundred of them per request)."""

    id: int
    status: IncidentStatus
    severity: Severity
    occurrence_count: int
    source: str | None

    @classmethod
    def of(cls, incident: Incident) -> "_Active":
        source = incident.metadata_.get("source")
        return cls(
            incident.id, incident.status, incident.severity, incident.occurrence_count, source
        )


@dataclass
class _Batch:
    routed: list[Routed]
    at: datetime
    cap: IncidentCap
    active: dict[Key, _Active]
    held: dict[Key, AlertHold]
    silences: list[Silence]
    downstream: Downstream | None
    upstream: list[Incident]
    counts: dict[Key, list[Routed]]
    opens: dict[Key, list[int]]  # key -> indexes of the alerts that open its incident


async def take_alerts(
    session: AsyncSession,
    routed: list[Routed],
    *,
    cap: IncidentCap,
    at: datetime,
    downstream: Downstream | None = None,
) -> list[Taken]:
    """What became of each alert, in order."""
    if (counted := await _count_all(session, routed, at)) is not None:
        return counted
    keys = sorted({(item.kind, item.alert.key) for item in routed})
    active = await _active(session, keys)
    # A storm's usual request only repeats firing alerts of active incidents: each counts,
    # whatever holds, silences or upstream incidents there are, so none is read.
    counts_only = all(
        item.alert.signal is Signal.FIRING and (item.kind, item.alert.key) in active
        for item in routed
    )
    batch = _Batch(
        routed=routed,
        at=at,
        cap=cap,
        active=active,
        held={}
        if counts_only
        else {
            (IncidentKind(kind), key): kept
            for (kind, key), kept in (
                await holds.unreleased(session, [(kind.value, key) for kind, key in keys])
            ).items()
        },
        silences=[] if counts_only else await holds.active_silences(session, at),
        downstream=downstream,
        upstream=await holds.upstream_incidents(session)
        if not counts_only and downstream and any(r.alert.nodes for r in routed)
        else [],
        counts={},
        opens={},
    )
    taken: list[Taken | None] = [None] * len(routed)
    for index, item in enumerate(routed):
        taken[index] = await _take(session, batch, index, item)
    await _open(session, batch, taken)
    await _count(session, batch)  # last: its events after every row lock (models/event.py)
    await session.flush()
    return [item for item in taken if item is not None]  # _open filled in every None


async def _count_all(
    session: AsyncSession, routed: list[Routed], at: datetime
) -> list[Taken] | None:
    """A storm's usual request, every alert firing, in one statement on PostgreSQL
    (storm_count.py); None when it is not one (a key without an active incident, a resolve, an
    acknowledgement) or on SQLite: the exact way takes it then."""
    if not routed or any(item.alert.signal is not Signal.FIRING for item in routed):
        return None
    if (await session.connection()).dialect.name != "postgresql":
        return None
    repeats: dict[Key, Repeats] = {}
    for item in routed:
        key = (item.kind, item.alert.key)
        if (one := repeats.get(key)) is None:
            repeats[key] = Repeats(
                item.kind, item.alert.key, 1, item.severity, item.alert.source.value
            )
            continue
        one.count += 1
        if item.severity.rank < one.severity.rank:
            one.severity = item.severity
    ids = await count_all(session, list(repeats.values()), at)
    if ids is None:
        return None
    id_of = dict(zip(repeats, ids, strict=True))
    return [
        Taken(item.alert.key, Outcome.COUNTED, id_of[(item.kind, item.alert.key)])
        for item in routed
    ]


async def _take(session: AsyncSession, batch: _Batch, index: int, item: Routed) -> Taken | None:
    key: Key = (item.kind, item.alert.key)
    alert = item.alert
    active = batch.active.get(key)
    if alert.signal is Signal.RESOLVED:
        return await _resolve(session, batch, item, key)
    if alert.signal is Signal.ACKNOWLEDGED:
        return await _acknowledge(session, batch, item, active)
    if active is not None:
        batch.counts.setdefault(key, []).append(item)
        return Taken(alert.key, Outcome.COUNTED, active.id)
    if key in batch.opens:  # opened by an earlier alert of this request
        batch.opens[key].append(index)
        return None
    kept = batch.held.get(key)
    if kept is not None:
        if (still := _still_held(batch, item, kept)) is not None:
            return still
        if kept.reason == HoldReason.PENDING.value:  # reached its threshold
            batch.opens[key] = [index]
            return None
        kept.released_at = batch.at
        del batch.held[key]
        await session.flush()  # released before anything holds the key again
    return await _first(session, batch, index, item, key)


async def _first(
    session: AsyncSession, batch: _Batch, index: int, item: Routed, key: Key
) -> Taken | None:
    """A firing alert whose key has no active incident and no hold."""
    alert, at = item.alert, batch.at
    subject = holds.Subject(item.kind.value, alert.key, alert.source.value, alert.labels)
    new = item.new_incident()
    if (silence := holds.silence_of(batch.silences, subject, at)) is not None:
        batch.held[key] = await holds.hold(
            session,
            new=new,
            source=alert.source.value,
            reason=HoldReason.SILENCED,
            at=at,
            silence_id=silence.id,
        )
        return Taken(alert.key, Outcome.SILENCED, silence_id=silence.id)
    if (upstream := _upstream_of(batch, alert)) is not None:
        batch.held[key] = await holds.hold(
            session,
            new=new,
            source=alert.source.value,
            reason=HoldReason.RELATED,
            at=at,
            incident_id=upstream.id,
        )
        upstream.note(
            actor=alert.source.value,
            verb="related",
            notes=f"{alert.key} failed downstream: listed here, not opened on its own",
            at=at,
        )
        return Taken(alert.key, Outcome.RELATED, upstream.id)
    if item.open_after is not None and item.open_after.occurrences > 1:
        batch.held[key] = await holds.hold(
            session, new=new, source=alert.source.value, reason=HoldReason.PENDING, at=at
        )
        return Taken(alert.key, Outcome.PENDING)
    if (reopened := await _reopen(session, item, at)) is not None:
        batch.active[key] = _Active.of(reopened)
        return Taken(alert.key, Outcome.REOPENED, reopened.id)
    batch.opens[key] = [index]
    return None


def _still_held(batch: _Batch, item: Routed, kept: AlertHold) -> Taken | None:
    """Count a firing alert on its hold while the hold still applies."""
    alert, at = item.alert, batch.at
    reason = HoldReason(kept.reason)
    if reason is HoldReason.SILENCED:
        subject = holds.Subject(item.kind.value, alert.key, alert.source.value, alert.labels)
        silence = holds.silence_of(batch.silences, subject, at)
        if silence is None:
            return None
        kept.silence_id = silence.id
        outcome = Taken(alert.key, Outcome.SILENCED, silence_id=silence.id)
    elif reason is HoldReason.RELATED:
        upstream = next((i for i in batch.upstream if i.id == kept.incident_id), None)
        if upstream is None:  # the upstream incident is over: this one stands on its own
            return None
        outcome = Taken(alert.key, Outcome.RELATED, upstream.id)
    else:
        subject = holds.Subject(item.kind.value, alert.key, alert.source.value, alert.labels)
        if (silence := holds.silence_of(batch.silences, subject, at)) is not None:
            # a maintenance window began while it was counting: silenced from now on (its
            # silence's end opens it if it still fires)
            kept.reason, kept.silence_id = HoldReason.SILENCED.value, silence.id
            outcome = Taken(alert.key, Outcome.SILENCED, silence_id=silence.id)
            kept.occurrences += 1
            kept.last_seen_at, kept.firing = at, True
            return outcome
        threshold = item.open_after
        if threshold is None or threshold.occurrences <= 1:
            return None  # its rule no longer holds it back: it opens
        if at - kept.first_seen_at > threshold.window:
            kept.first_seen_at, kept.occurrences = at, 0  # a new window starts with this one
        kept.occurrences += 1
        kept.last_seen_at, kept.firing = at, True
        return (
            None if kept.occurrences >= threshold.occurrences else Taken(alert.key, Outcome.PENDING)
        )
    kept.occurrences += 1
    kept.last_seen_at, kept.firing = at, True
    return outcome


async def _resolve(session: AsyncSession, batch: _Batch, item: Routed, key: Key) -> Taken:
    alert, at = item.alert, batch.at
    if (kept := batch.held.get(key)) is not None:
        kept.firing, kept.last_seen_at = False, at
        if kept.reason != HoldReason.SILENCED.value:  # a silenced one waits for its silence
            kept.released_at = at
            del batch.held[key]
    active = batch.active.get(key)
    if active is None or active.source != alert.source.value:
        return Taken(alert.key, Outcome.IGNORED)
    incident = await _incident(session, active.id)
    if items := batch.counts.pop(key, None):  # counted earlier in this request: count first
        incident.record_recurrence(
            actor=alert.source.value, at=at, severity=_worst(items), count=len(items)
        )
    # the mark of this resolution only: one a person makes later does not carry it
    incident.metadata_ = {**incident.metadata_, "resolved_by_source_at": isoformat(at)}
    incident.apply(
        Verb.RESOLVE, actor=alert.source.value, at=at, notes=f"resolved by {alert.source}"
    )
    del batch.active[key]
    return Taken(alert.key, Outcome.RESOLVED, incident.id)


async def _acknowledge(
    session: AsyncSession, batch: _Batch, item: Routed, active: _Active | None
) -> Taken:
    alert = item.alert
    if active is None or active.source != alert.source.value:  # not what this source opened
        return Taken(alert.key, Outcome.IGNORED)
    if active.status is not IncidentStatus.OPEN:
        return Taken(alert.key, Outcome.IGNORED, active.id)
    actor = alert.actor or alert.source.value
    incident = await _incident(session, active.id)
    incident.apply(
        Verb.ACKNOWLEDGE,
        actor=actor,
        at=batch.at,
        notes=f"acknowledged through {alert.source}",
        changes={"acknowledged_by": actor},
    )
    active.status = incident.status
    return Taken(alert.key, Outcome.ACKNOWLEDGED, active.id)


async def _incident(session: AsyncSession, incident_id: int) -> Incident:
    """The ORM object of an incident whose row this transaction already locked."""
    incident = await session.get(Incident, incident_id)
    assert incident is not None  # locked: it cannot have gone
    return incident


async def _reopen(session: AsyncSession, item: Routed, at: datetime) -> Incident | None:
    """The incident its source resolved within the rule's flap window, reopened; None if none."""
    if item.flap_window <= timedelta(0):
        return None
    query = (
        select(Incident)
        .where(
            Incident.kind == item.kind,
            Incident.key == item.alert.key,
            Incident.status == IncidentStatus.RESOLVED,
            Incident.resolved_at > at - item.flap_window,
        )
        .order_by(Incident.id.desc())
        .limit(1)
        .with_for_update()
    )
    last = await session.scalar(query)
    if last is None or last.metadata_.get("resolved_by_source_at") != isoformat(last.resolved_at):
        return None
    source = item.alert.source.value
    seconds = int((at - last.resolved_at).total_seconds()) if last.resolved_at else 0
    try:
        async with session.begin_nested():
            last.apply(
                Verb.REOPEN,
                actor=source,
                at=at,
                notes=f"fired again {seconds} s after {source} resolved it",
                changes={"occurrence_count": last.occurrence_count + 1, "last_seen_at": at},
            )
            await session.flush()
    except IntegrityError:  # another request opened the key meanwhile: it counts there
        return None
    return last


async def _count(session: AsyncSession, batch: _Batch) -> None:
    """Count the repeats of every key at once (`count_repeats`: one statement on PostgreSQL)."""
    said = [
        Recurrence.of(
            batch.active[key],
            actor=items[0].alert.source.value,
            at=batch.at,
            severity=_worst(items),
            count=len(items),
        )
        for key, items in batch.counts.items()
    ]
    await count_repeats(
        session,
        [
            (one, one.changed.get("severity", batch.active[key].severity))
            for key, one in zip(batch.counts, said, strict=True)
        ],
    )


def _worst(items: list[Routed]) -> Severity:
    return min((item.severity for item in items), key=lambda severity: severity.rank)


async def _open(session: AsyncSession, batch: _Batch, taken: list[Taken | None]) -> None:
    """Open the incidents of `batch.opens` (one statement where it can), each alert after the
    first counting on it."""
    if not batch.opens:
        return
    firsts = {key: batch.routed[indexes[0]] for key, indexes in batch.opens.items()}
    opened = await _insert(session, batch, firsts)
    for key, indexes in batch.opens.items():
        item = firsts[key]
        found = opened.get(key)
        if found is None:
            try:
                found = await create_incident(
                    session,
                    new=item.new_incident(),
                    actor=item.alert.source.value,
                    cap=batch.cap,
                    at=batch.at,
                )
            except RateLimited:
                for index in indexes:
                    taken[index] = Taken(item.alert.key, Outcome.CAPPED)
                continue
        incident, created = found
        held = batch.held.pop(key, None)
        extra = len(indexes) - 1 + (held.occurrences - 1 if held else 0)
        if held is not None:
            held.released_at, held.opened_incident_id = batch.at, incident.id
        if extra > 0:
            incident.record_recurrence(
                actor=item.alert.source.value, at=batch.at, severity=item.severity, count=extra
            )
        first = Outcome.OPENED if created else Outcome.COUNTED
        for position, index in enumerate(indexes):
            outcome = first if position == 0 else Outcome.COUNTED
            taken[index] = Taken(item.alert.key, outcome, incident.id)


async def _insert(
    session: AsyncSession, batch: _Batch, firsts: dict[Key, Routed]
) -> dict[Key, tuple[Incident, bool]]:
    """The keys far from their cap, opened in one statement (none if one was taken meanwhile:
    `create_incident` settles each then)."""
    news = {key: item.new_incident() for key, item in firsts.items()}
    capped = await near_cap(session, [(new, batch.at) for new in news.values()], batch.cap)
    keys = [key for key in news if key not in capped]
    inserted = await insert_incidents(session, [(news[key], batch.at) for key in keys]) or []
    for key, incident in zip(keys, inserted, strict=False):
        incident.record_created(actor=firsts[key].alert.source.value, at=batch.at)
    return {key: (incident, True) for key, incident in zip(keys, inserted, strict=False)}


_ACTIVE_COLUMNS = (
    Incident.id,
    Incident.kind,
    Incident.key,
    Incident.status,
    Incident.severity,
    Incident.occurrence_count,
    Incident.metadata_["source"].as_string().label("source"),
)
# PostgreSQL: the keys as two arrays, one statement text whatever their number (psycopg
# prepares it; an IN list of pairs is rendered and parsed again for every request)
_WANTED = (
    func.unnest(bindparam("kinds", type_=ARRAY(String)), bindparam("keys", type_=ARRAY(String)))
    .table_valued("kind", "key")
    .render_derived()
)


def _locked_active(wanted: ColumnElement[bool]) -> Select[Any]:
    """The active incidents `wanted` picks, locked in the order of their keys."""
    return (
        select(*_ACTIVE_COLUMNS)
        .where(wanted, Incident.status.in_(ACTIVE_STATUSES))
        .order_by(Incident.kind, Incident.key)
        .with_for_update()
    )


_ACTIVE_OF_ARRAYS = _locked_active(
    tuple_(Incident.kind, Incident.key).in_(select(_WANTED.c.kind, _WANTED.c.key))
)


async def _active(session: AsyncSession, keys: list[Key]) -> dict[Key, _Active]:
    """The active incidents of these keys, their rows locked (in the order of the keys)."""
    if not keys:
        return {}
    if (await session.connection()).dialect.name == "postgresql":
        rows = await session.execute(
            _ACTIVE_OF_ARRAYS,
            {"kinds": [kind.value for kind, _ in keys], "keys": [key for _, key in keys]},
        )
    else:
        pairs = [(kind.value, key) for kind, key in keys]
        rows = await session.execute(_locked_active(tuple_(Incident.kind, Incident.key).in_(pairs)))
    found: dict[Key, _Active] = {}
    for row in rows:
        active = _Active(row.id, row.status, row.severity, row.occurrence_count, row.source)
        found[(row.kind, row.key)] = active
    return found


def _upstream_of(batch: _Batch, alert: Alert) -> Incident | None:
    if batch.downstream is None or not alert.nodes:
        return None
    return holds.upstream_of(batch.upstream, alert.key, alert.nodes, batch.downstream)
