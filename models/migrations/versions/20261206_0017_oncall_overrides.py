"""On-call overrides made through the API: who covers a schedule, from when to when, by whom.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 04:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "oncall_overrides",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("schedule", sa.String(64), nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("covers", sa.String(64), nullable=True),
        _at("starts_at", nullable=False),
        _at("ends_at", nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        _at("created_at", nullable=False),
        sa.Column("cancelled_by", sa.String(320), nullable=True),
        _at("cancelled_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_overrides")),
    )
    op.create_index(
        "ix_oncall_overrides_schedule_ends_at", "oncall_overrides", ["schedule", "ends_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_oncall_overrides_schedule_ends_at", table_name="oncall_overrides")
    op.drop_table("oncall_overrides")
