"""This installation's identity: one row, made by the migration that created the table.

Several Intervene installations (or a test database beside a real one) can share a Prefect
server. Flow-run idempotency keys and tags carry this id, so one installation never mistakes
another's run for its own.
"""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class Installation(Base):
    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    installation_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


INSTALLATION_PREFIX = "installation:"


def installation_tag(installation: str) -> str:
    return f"{INSTALLATION_PREFIX}{installation}"


def action_run_key(installation: str, action_id: int) -> str:
    """The idempotency key of an action's flow run: a retried launch finds the same run."""
    return f"intervene-{installation}-action-{action_id}"


def action_run_tags(installation: str, action_id: int, incident_id: int) -> list[str]:
    """An action's flow-run tags: the reconciler finds a lost run by the first three; hooks
    ignore a run whose installation tag is another's."""
    return [
        "intervene",
        installation_tag(installation),
        f"action:{action_id}",
        f"incident:{incident_id}",
    ]
