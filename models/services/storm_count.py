"""A storm's usual request in one statement on PostgreSQL: every alert a firing repeat of an
active incident. The rows are locked in key order, counted, noted on the timeline and announced
as `incident_updated` events (the notes and payloads are `Recurrence`'s, built in SQL), and the
ids come back: one round trip and no Python object per incident.

When a key of the request has no active incident nothing is written (its rows stay locked, as
the exact path locks them next): the request goes the exact way (models/services/alert_intake.py).
"""

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import isoformat
from models.enums import ACTIVE_STATUSES, EventType, IncidentKind, Severity
from models.event import ORDER_PARAMS
from models.incident import Incident


@dataclass
class Repeats:
    """The firing repeats of one key in a request."""

    kind: IncidentKind
    key: str
    count: int
    severity: Severity  # the worst of them
    actor: str


# `locked` takes the row locks in key order (the order every writer of incidents takes them);
# `ordered` takes the events' ordering lock once every row lock is held (it reads all of
# `locked`), and every row of x is read after it, so no event id is drawn before it is held.
# x is empty unless every key has its active incident. Severities compare as text: sev1 < sev4.
_COUNT_ALL = text(
    """
WITH wanted AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS w(
        n integer, kind text, key text, count integer, severity text, actor text
    )
), locked AS MATERIALIZED (
    SELECT id, kind, key, status, severity, occurrence_count FROM incidents
    WHERE (kind, key) IN (SELECT kind, key FROM wanted) AND status IN :active
    ORDER BY kind, key
    FOR UPDATE
), ordered AS MATERIALIZED (
    SELECT pg_advisory_xact_lock(:order_key), pg_notify(:order_channel, '')
    FROM (SELECT count(*) AS locked FROM locked) AS every_row
), x AS MATERIALIZED (
    SELECT w.n, l.id, l.status, w.actor, l.occurrence_count + w.count AS occurrence_count,
        LEAST(l.severity, w.severity) AS severity,
        CASE WHEN w.count = 1 THEN 'occurrence ' || (l.occurrence_count + 1)
            ELSE 'occurrences ' || (l.occurrence_count + 1) || '-'
                || (l.occurrence_count + w.count)
        END || CASE WHEN w.severity < l.severity THEN ' (escalated to ' || w.severity || ')'
            ELSE '' END AS notes,
        jsonb_build_object(
            'id', l.id, 'status', l.status, 'change', 'recurred',
            'occurrence_count', l.occurrence_count + w.count,
            'last_seen_at', CAST(:at_text AS text), 'updated_at', CAST(:at_text AS text)
        ) || CASE WHEN w.severity < l.severity THEN jsonb_build_object('severity', w.severity)
            ELSE '{}'::jsonb END AS payload
    FROM ordered, locked AS l JOIN wanted AS w ON l.kind = w.kind AND l.key = w.key
    WHERE (SELECT count(*) FROM locked) = :keys
), counted AS (
    UPDATE incidents
    SET occurrence_count = x.occurrence_count, severity = x.severity,
        last_seen_at = :at, updated_at = :at
    FROM x WHERE incidents.id = x.id
), noted AS (
    INSERT INTO incident_timeline (incident_id, actor, verb, from_status, to_status, notes, at)
    SELECT x.id, x.actor, 'recur', x.status, x.status, x.notes, :at FROM x ORDER BY x.n
), announced AS (
    INSERT INTO events (type, incident_id, payload, created_at)
    SELECT :type, x.id, x.payload, :at FROM x ORDER BY x.n
)
SELECT x.n, x.id FROM x
"""
).bindparams(
    bindparam("at", type_=Incident.__table__.c.updated_at.type),
    bindparam("active", expanding=True),
)


async def count_all(
    session: AsyncSession, repeats: list[Repeats], at: datetime
) -> list[int] | None:
    """Each key's incident id (in the order given), its repeats counted; None, with nothing
    written, when a key has no active incident."""
    rows = [
        {
            "n": n,
            "kind": one.kind.value,
            "key": one.key,
            "count": one.count,
            "severity": one.severity.value,
            "actor": one.actor,
        }
        for n, one in enumerate(repeats)
    ]
    result = await session.execute(
        _COUNT_ALL,
        {
            "rows": json.dumps(rows),
            "active": [status.value for status in ACTIVE_STATUSES],
            "keys": len(repeats),
            "at": at,
            "at_text": isoformat(at),
            "type": EventType.INCIDENT_UPDATED.value,
            **ORDER_PARAMS,
        },
    )
    ids = {int(row.n): int(row.id) for row in result}
    if len(ids) != len(repeats):
        return None
    return [ids[n] for n in range(len(repeats))]
