"""Check runs: what started each (schedule, manual, playbook); earlier runs were the schedule's.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("check_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("trigger", sa.String(16), nullable=False, server_default="schedule")
        )


def downgrade() -> None:
    with op.batch_alter_table("check_runs", schema=None) as batch_op:
        batch_op.drop_column("trigger")
