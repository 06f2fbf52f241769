"""Incidents of kind pipeline: a failed or crashed run of one of the platform's Prefect flows.

The kind is a VARCHAR with a CHECK constraint (a non-native enum), so the constraint is
dropped and made again with the new value; SQLite does it by copying the table (batch mode).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("invariant", "budget", "planner")
AFTER = (*BEFORE, "pipeline")


def kind(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(
        *values, name="incident_kind", native_enum=False, create_constraint=True, length=16
    )


def change_kinds(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.alter_column(
            "kind", existing_type=kind(old), type_=kind(new), existing_nullable=False
        )


def upgrade() -> None:
    change_kinds(BEFORE, AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM incidents WHERE kind = 'pipeline'")
    change_kinds(AFTER, BEFORE)
