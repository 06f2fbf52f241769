"""Who may do what: API tokens (stored hashed), approval requests, and the audit log.

An approval request's status, like an incident's, has one rule book and one guard:

    pending -> approved    approve: its run is being started (and then is recorded)
    pending -> rejected    reject
    pending -> expired     expire: not decided within INTERVENE_APPROVAL_TTL_SECONDS
    approved -> pending    release: the approval's run was never recorded, so it may be decided
                           again (it failed before, or its process stopped)

`APPROVAL_TRANSITIONS` is the table; `ApprovalRequest.apply()` is the only writer of `status`.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow
from models.enums import ApprovalStatus, Role
from models.errors import Conflict

ApprovalVerb = Literal["approve", "reject", "expire", "release"]
_PENDING = frozenset({ApprovalStatus.PENDING})
APPROVAL_TRANSITIONS: dict[ApprovalVerb, tuple[frozenset[ApprovalStatus], ApprovalStatus]] = {
    "approve": (_PENDING, ApprovalStatus.APPROVED),
    "reject": (_PENDING, ApprovalStatus.REJECTED),
    "expire": (_PENDING, ApprovalStatus.EXPIRED),
    "release": (frozenset({ApprovalStatus.APPROVED}), ApprovalStatus.PENDING),
}


class ApiToken(Base):
    """A bearer token: only its SHA-256 is kept (tokens are 256 random bits: no salt or slow
    hash is needed to make a stolen table useless), plus a prefix to tell tokens apart."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))  # a Role
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(320))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ApprovalRequest(Base):
    """An execution (or rollback) asked for by one person, waiting for another to approve it.
    It holds the exact params and the dry-run plan it was asked with; approving executes
    exactly these, once."""

    __tablename__ = "approval_requests"
    __table_args__ = (Index("ix_approval_requests_incident", "incident_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    action_type: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rollback_of: Mapped[int | None] = mapped_column(ForeignKey("actions.id", ondelete="SET NULL"))
    plan: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=ApprovalStatus.PENDING.value)
    requested_by: Mapped[str] = mapped_column(String(320))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(320))
    decided_at: Mapped[datetime | None]
    decision_notes: Mapped[str | None] = mapped_column(Text)
    action_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id", ondelete="SET NULL"))

    def apply(
        self,
        verb: ApprovalVerb,
        *,
        by: str | None = None,
        at: datetime | None = None,
        notes: str | None = None,
    ) -> None:
        """Move the request by `verb` (Conflict if its status does not allow it): a decision
        records who, when and why; a release forgets the decision it gives back."""
        allowed, target = APPROVAL_TRANSITIONS[verb]
        if self.status not in allowed:
            raise Conflict(
                f"Approval request {self.id} is already {self.status}",
                details={
                    "approval_id": self.id,
                    "status": self.status,
                    "action_id": self.action_id,
                },
            )
        self.status = target.value
        if verb in ("approve", "reject"):
            self.decided_by, self.decided_at, self.decision_notes = by, at, notes
        elif verb == "release":
            self.decided_by = self.decided_at = self.decision_notes = None


class AuditEntry(Base):
    """One state-changing request: who (token name), from where, what, when, and the answer."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    principal: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str | None] = mapped_column(String(20))
    client: Mapped[str | None] = mapped_column(String(100))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    status: Mapped[int]
    request_id: Mapped[str | None] = mapped_column(String(64))


@dataclass(frozen=True)
class Principal:
    """Who asks: a token's name and role (the API authenticates; the services judge)."""

    name: str
    role: Role
    token_id: int | None = None  # None: auth is disabled

    def allows(self, needed: Role) -> bool:
        return self.role.allows(needed)
