"""Slack notifications: where each message went (its channel and ts, for chat.update) and when
it last showed the incident as it was.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTED = "message_ts IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_channel", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("message_ts", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_notifications_posted",
        "notifications",
        ["incident_id"],
        sqlite_where=sa.text(POSTED),
        postgresql_where=sa.text(POSTED),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_posted", table_name="notifications")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("synced_at")
        batch_op.drop_column("message_ts")
        batch_op.drop_column("message_channel")
