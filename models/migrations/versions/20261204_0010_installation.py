"""The installation's id, made here once: flow-run keys and tags carry it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 17:00:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import uuid4

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation")),
    )
    op.bulk_insert(
        table, [{"id": 1, "installation_id": str(uuid4()), "created_at": datetime.now(UTC)}]
    )


def downgrade() -> None:
    op.drop_table("installation")
