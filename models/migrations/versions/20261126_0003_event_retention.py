"""Event retention: how far the events log has been pruned.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 02:30:28.536431
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_retention",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "pruned_through", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_retention")),
    )


def downgrade() -> None:
    op.drop_table("event_retention")
