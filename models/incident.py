"""Incidents, their timeline, and the state machine that is the only writer of `status`.

    open -> acknowledged -> mitigated -> resolved -> closed
      ^                                      |
      +--------------- reopen ---------------+

`TRANSITIONS` is the whole rule book; `Incident.apply()` is the one guard that checks it,
stamps the time, and appends a timeline row and an event row to the same transaction.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, String, Text, inspect, text
from sqlalchemy.orm import Mapped, WriteOnlyMapped, mapped_column, relationship

from models.base import Base, BigId, JsonDoc, isoformat, utcnow
from models.enums import (
    ACTIVE_STATUSES,
    EventType,
    IncidentKind,
    IncidentStatus,
    Severity,
    SlaTimer,
    Verb,
)
from models.errors import InvalidTransition
from models.event import Event

S = IncidentStatus

# verb -> (statuses it may start from, status it leads to; None keeps the status)
TRANSITIONS: dict[Verb, tuple[frozenset[IncidentStatus], IncidentStatus | None]] = {
    Verb.ACKNOWLEDGE: (frozenset({S.OPEN}), S.ACKNOWLEDGED),
    Verb.MITIGATE: (frozenset({S.OPEN, S.ACKNOWLEDGED}), S.MITIGATED),
    Verb.RESOLVE: (frozenset({S.OPEN, S.ACKNOWLEDGED, S.MITIGATED}), S.RESOLVED),
    Verb.CLOSE: (frozenset({S.RESOLVED}), S.CLOSED),
    Verb.REOPEN: (frozenset({S.RESOLVED}), S.OPEN),
    Verb.ASSIGN: (frozenset(set(S) - {S.CLOSED}), None),
}

_STAMPED: dict[Verb, str] = {
    Verb.ACKNOWLEDGE: "acknowledged_at",
    Verb.MITIGATE: "mitigated_at",
    Verb.RESOLVE: "resolved_at",
    Verb.CLOSE: "closed_at",
}

# Where the announced breach of each SLA timer is kept (models/sla.py computes the timers).
SLA_BREACH_FIELDS: dict[SlaTimer, str] = {
    SlaTimer.ACKNOWLEDGE: "sla_acknowledge_breached_at",
    SlaTimer.MITIGATE: "sla_mitigate_breached_at",
    SlaTimer.RESOLVE: "sla_resolve_breached_at",
}

# The `change` an `incident_updated` event names for each verb.
CHANGE_OF: dict[Verb, str] = {
    Verb.ACKNOWLEDGE: "acknowledged",
    Verb.MITIGATE: "mitigated",
    Verb.RESOLVE: "resolved",
    Verb.CLOSE: "closed",
    Verb.REOPEN: "reopened",
    Verb.ASSIGN: "assigned",
}

_ACTIVE_SQL = "status IN ({})".format(", ".join(f"'{s.value}'" for s in ACTIVE_STATUSES))


def _enum(enum_cls: type[Any], name: str) -> Enum:
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


@dataclass(frozen=True)
class Recurrence:
    """What a repeat of an active incident changes, its timeline entry and its event: built
    once, applied to an object (`Incident.record_recurrence`) or written in bulk for many
    incidents at once (models/services/alert_intake.py)."""

    incident_id: int
    status: str
    actor: str
    at: datetime
    changed: dict[str, Any]
    notes: str

    @classmethod
    def of(
        cls,
        incident: Any,  # an Incident, or a row with its id, status, severity, occurrence_count
        *,
        actor: str,
        at: datetime,
        severity: Severity,
        count: int = 1,
        notes: str | None = None,
        said: str | None = None,
    ) -> "Recurrence":
        """`notes` replace the timeline's "occurrence N" note; `said` (what this occurrence
        measured, a check's value against its threshold) follows it."""
        first, last = incident.occurrence_count + 1, incident.occurrence_count + count
        changed: dict[str, Any] = {"occurrence_count": last, "last_seen_at": at}
        if severity.rank < incident.severity.rank:
            changed["severity"] = severity
        escalation = f" (escalated to {severity.value})" if "severity" in changed else ""
        counted = f"occurrence {last}" if first == last else f"occurrences {first}-{last}"
        status = IncidentStatus(incident.status).value
        told = f"{counted}{escalation}" + (f": {said}" if said else "")
        return cls(incident.id, status, actor, at, changed, notes or told)

    def timeline_row(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "verb": "recur",
            "from_status": self.status,
            "to_status": self.status,
            "notes": self.notes,
            "at": self.at,
        }

    def event_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"id": self.incident_id, "status": self.status}
        payload["change"] = "recurred"
        payload.update({field: _json_value(value) for field, value in self.changed.items()})
        payload["updated_at"] = isoformat(self.at)
        return payload


def _json_value(value: Any) -> Any:
    return isoformat(value) if isinstance(value, datetime) else value


class TimelineEntry(Base):
    __tablename__ = "incident_timeline"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    actor: Mapped[str] = mapped_column(String(320))
    verb: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    notes: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        # At most one active incident per (kind, key): the database enforces it, not a query.
        Index(
            "uq_incidents_active_kind_key",
            "kind",
            "key",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
        Index("ix_incidents_key_created_at", "key", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[IncidentKind] = mapped_column(_enum(IncidentKind, "incident_kind"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    severity: Mapped[Severity] = mapped_column(_enum(Severity, "severity"), index=True)
    status: Mapped[IncidentStatus] = mapped_column(
        _enum(IncidentStatus, "incident_status"), index=True, default=IncidentStatus.OPEN
    )
    summary: Mapped[str] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    playbooks: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    issue_url: Mapped[str | None] = mapped_column(String(2000))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    assigned_to: Mapped[str | None] = mapped_column(String(320))
    acknowledged_by: Mapped[str | None] = mapped_column(String(320))
    acknowledged_at: Mapped[datetime | None]
    mitigated_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # Set once, when the SLA sweep announces that the timer ran out (its due time): the mark
    # that makes the announcement happen exactly once, whatever the number of sweepers.
    sla_acknowledge_breached_at: Mapped[datetime | None]
    sla_mitigate_breached_at: Mapped[datetime | None]
    sla_resolve_breached_at: Mapped[datetime | None]
    occurrence_count: Mapped[int] = mapped_column(default=1)
    reopen_count: Mapped[int] = mapped_column(default=0)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    timeline: WriteOnlyMapped[TimelineEntry] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by=TimelineEntry.id
    )
    events: WriteOnlyMapped[Event] = relationship(passive_deletes=True, order_by=Event.id)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def as_row(self) -> dict[str, Any]:
        """Every column, keyed by attribute name: what a listed row holds
        (`models.services.incidents.list_incidents`)."""
        return {key: getattr(self, key) for key in COLUMNS}

    def check(self, verb: Verb) -> IncidentStatus | None:
        """Raise InvalidTransition unless `verb` is allowed now; return the status it leads to."""
        allowed, target = TRANSITIONS[verb]
        if self.status not in allowed:
            raise InvalidTransition(
                f"Cannot {verb.value} incident {self.id}: it is {self.status.value}",
                details={
                    "incident_id": self.id,
                    "verb": verb.value,
                    "current_status": self.status.value,
                    "allowed_from": sorted(s.value for s in allowed),
                },
            )
        return target

    def apply(
        self,
        verb: Verb,
        *,
        actor: str,
        at: datetime,
        notes: str | None = None,
        changes: dict[str, Any] | None = None,
    ) -> None:
        """Perform `verb` if the transition table allows it from the current status.

        `changes` are the other fields the verb sets (for example `acknowledged_by`); they are
        applied only when the transition is allowed and are echoed in the event.
        """
        target = self.check(verb)
        before = self.status
        changed: dict[str, Any] = dict(changes or {})
        if target is not None:
            self.status = target
        if verb in _STAMPED:
            changed[_STAMPED[verb]] = at
        if verb is Verb.REOPEN:
            self.reopen_count += 1
            changed["resolved_at"] = None
            changed["reopen_count"] = self.reopen_count
        for field, value in changed.items():
            setattr(self, field, value)
        self.updated_at = at
        self.timeline.add(
            TimelineEntry(
                actor=actor,
                verb=verb.value,
                from_status=before.value,
                to_status=self.status.value,
                notes=notes,
                at=at,
            )
        )
        self._emit_updated(CHANGE_OF[verb], changed, at)

    def record_created(self, *, actor: str, at: datetime, notes: str | None = None) -> None:
        """Timeline and `incident_created` event for a new incident (call after its flush)."""
        self.timeline.add(
            TimelineEntry(
                actor=actor,
                verb="create",
                from_status=None,
                to_status=self.status.value,
                notes=notes,
                at=at,
            )
        )
        self.events.add(
            Event.of(
                EventType.INCIDENT_CREATED,
                {
                    "id": self.id,
                    "kind": self.kind.value,
                    "key": self.key,
                    "severity": self.severity.value,
                    "status": self.status.value,
                    "summary": self.summary,
                    "created_at": isoformat(self.created_at),
                },
            )
        )

    def record_recurrence(
        self,
        *,
        actor: str,
        at: datetime,
        severity: Severity,
        notes: str | None = None,
        count: int = 1,
        said: str | None = None,
    ) -> None:
        """The same problem was reported again (`count` times, one entry) while this incident
        is active."""
        recurrence = Recurrence.of(
            self, actor=actor, at=at, severity=severity, count=count, notes=notes, said=said
        )
        for field, value in recurrence.changed.items():
            setattr(self, field, value)
        self.updated_at = at
        self.timeline.add(TimelineEntry(**recurrence.timeline_row()))
        self._emit_updated("recurred", recurrence.changed, at)

    def note(
        self,
        *,
        actor: str,
        verb: str,
        notes: str,
        at: datetime,
        changes: dict[str, Any] | None = None,
    ) -> None:
        """A timeline entry that changes no status (its check passes again, an issue opened)."""
        for field, value in (changes or {}).items():
            setattr(self, field, value)
        self.updated_at = at
        self.timeline.add(
            TimelineEntry(
                actor=actor,
                verb=verb,
                from_status=self.status.value,
                to_status=self.status.value,
                notes=notes,
                at=at,
            )
        )
        self._emit_updated(verb, {"notes": notes, **(changes or {})}, at)

    def sla_breach_announced(self, timer: SlaTimer) -> datetime | None:
        announced: datetime | None = getattr(self, SLA_BREACH_FIELDS[timer])
        return announced

    def record_sla_breach(
        self, *, timer: SlaTimer, due_at: datetime, at: datetime, notes: str
    ) -> None:
        """Announce that `timer` ran out at `due_at` (a timeline row and an `sla_breached`
        event); the status is untouched. The caller holds the row lock and checked
        `sla_breach_announced` under it."""
        setattr(self, SLA_BREACH_FIELDS[timer], due_at)
        self.updated_at = at
        self.timeline.add(
            TimelineEntry(
                actor="sla",
                verb="sla_breached",
                from_status=self.status.value,
                to_status=self.status.value,
                notes=notes,
                at=at,
            )
        )
        self._emit_updated(
            "sla_breached", {"sla": timer.value, "due_at": due_at, "breached_at": due_at}, at
        )

    def _emit_updated(self, change: str, changed: dict[str, Any], at: datetime) -> None:
        payload: dict[str, Any] = {"id": self.id, "status": self.status.value, "change": change}
        payload.update({field: _json_value(value) for field, value in changed.items()})
        payload["updated_at"] = isoformat(at)
        self.events.add(Event.of(EventType.INCIDENT_UPDATED, payload))


# Incident's column attributes, in the mapper's order: `Incident.as_row` and the list's select.
COLUMNS: tuple[str, ...] = tuple(inspect(Incident).column_attrs.keys())
