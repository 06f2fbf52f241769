"""Remediation of routed alerts: an attempt names the check or the alert rule whose policy it
runs; an alert's attempt has no check run behind it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 00:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
IN_FLIGHT = "finished_at IS NULL"


def _in_flight_index() -> None:
    op.create_index(
        "uq_remediations_in_flight",
        "remediations",
        ["key"],
        unique=True,
        sqlite_where=sa.text(IN_FLIGHT),
        postgresql_where=sa.text(IN_FLIGHT),
    )


def upgrade() -> None:
    # SQLite's batch mode copies the table: the partial index is made again by hand
    op.drop_index("uq_remediations_in_flight", table_name="remediations")
    with op.batch_alter_table("remediations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rule", sa.String(length=100), nullable=True))
        batch_op.alter_column("check_id", existing_type=sa.String(length=120), nullable=True)
        batch_op.alter_column("trigger_run_id", existing_type=BigId, nullable=True)
    _in_flight_index()


def downgrade() -> None:
    op.execute("DELETE FROM remediations WHERE check_id IS NULL")
    op.drop_index("uq_remediations_in_flight", table_name="remediations")
    with op.batch_alter_table("remediations", schema=None) as batch_op:
        batch_op.alter_column("trigger_run_id", existing_type=BigId, nullable=False)
        batch_op.alter_column("check_id", existing_type=sa.String(length=120), nullable=False)
        batch_op.drop_column("rule")
    _in_flight_index()
