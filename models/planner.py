"""The planner's traffic: which versions serve how much, which is stable, and every change.

Agents read `GET /api/planner` to pick a version; the planner playbooks change it. Traffic is
a map version -> percent that always sums to 100 (or is empty when no planner is set up).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow


class PlannerState(Base):
    __tablename__ = "planner_state"

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    stable_version: Mapped[str | None] = mapped_column(String(64))
    canary_version: Mapped[str | None] = mapped_column(String(64))
    traffic: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def active_version(self) -> str | None:
        """The version serving the most traffic."""
        if not self.traffic:
            return None
        return max(self.traffic, key=lambda version: (self.traffic[version], version))

    def share(self, version: str) -> int:
        return int(self.traffic.get(version, 0))


class PlannerChange(Base):
    __tablename__ = "planner_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(320))
    action_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id", ondelete="SET NULL"))
    change: Mapped[str] = mapped_column(String(200))
    before: Mapped[dict[str, Any]]
    after: Mapped[dict[str, Any]]
