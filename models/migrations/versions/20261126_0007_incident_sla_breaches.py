"""Incidents: when each SLA timer's breach was announced.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("sla_acknowledge_breached_at", "sla_mitigate_breached_at", "sla_resolve_breached_at")


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
