"""Automatic remediation: its attempts, the automation switch (one row, not paused), and an
index of check runs by incident (the loop reads each active incident's newest violation).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
IN_FLIGHT = "finished_at IS NULL"


def _at(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _action(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        name,
        BigId,
        sa.ForeignKey("actions.id", name=f"fk_remediations_{name}_actions", ondelete="SET NULL"),
        nullable=True,
    )


def upgrade() -> None:
    op.create_table(
        "remediations",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column(
            "incident_id",
            BigId,
            sa.ForeignKey(
                "incidents.id", name="fk_remediations_incident_id_incidents", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("key", sa.String(220), nullable=False),
        sa.Column("check_id", sa.String(120), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(24), nullable=False),
        sa.Column("action_type", sa.String(64), nullable=False),
        sa.Column("params", JsonDoc, nullable=False),
        sa.Column("policy", JsonDoc, nullable=False),
        sa.Column("trigger_run_id", BigId, nullable=False),
        _at("detected_at", nullable=False),
        _action("dry_run_action_id"),
        sa.Column(
            "approval_id",
            BigId,
            sa.ForeignKey(
                "approval_requests.id",
                name="fk_remediations_approval_id_approval_requests",
                ondelete="SET NULL",
            ),
            nullable=True,
        ),
        _action("action_id"),
        sa.Column("verify_flow_run_id", sa.String(64), nullable=True),
        sa.Column("verify_check_run_id", BigId, nullable=True),
        _action("rollback_action_id"),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("gave_up", sa.Boolean(), nullable=False),
        _at("released_at"),
        sa.Column("released_by", sa.String(320), nullable=True),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        _at("lease_until"),
        _at("created_at", nullable=False),
        _at("updated_at", nullable=False),
        _at("step_started_at", nullable=False),
        _at("executed_at"),
        _at("verified_at"),
        _at("finished_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remediations")),
    )
    op.create_index(
        "uq_remediations_in_flight",
        "remediations",
        ["key"],
        unique=True,
        sqlite_where=sa.text(IN_FLIGHT),
        postgresql_where=sa.text(IN_FLIGHT),
    )
    op.create_index("ix_remediations_incident", "remediations", ["incident_id", "id"])
    op.create_index("ix_remediations_executed_at", "remediations", ["executed_at"])
    state = op.create_table(
        "automation_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("changed_by", sa.String(320), nullable=True),
        _at("changed_at"),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_state")),
    )
    op.bulk_insert(state, [{"id": 1, "paused": False}])
    op.create_index("ix_check_runs_incident", "check_runs", ["incident_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_check_runs_incident", table_name="check_runs")
    op.drop_table("automation_state")
    op.drop_index("ix_remediations_executed_at", table_name="remediations")
    op.drop_index("ix_remediations_incident", table_name="remediations")
    op.drop_index("uq_remediations_in_flight", table_name="remediations")
    op.drop_table("remediations")
