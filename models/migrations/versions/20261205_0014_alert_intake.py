"""Alerts from other tools: incidents of kind alert, silences, and held alerts (silenced, pending
their rule's threshold, or related to an upstream incident).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UNRELEASED = "released_at IS NULL"
BEFORE = ("invariant", "budget", "planner", "pipeline")
AFTER = (*BEFORE, "alert")


def kind(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(
        *values, name="incident_kind", native_enum=False, create_constraint=True, length=16
    )


def change_kinds(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.alter_column(
            "kind", existing_type=kind(old), type_=kind(new), existing_nullable=False
        )


def _at(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    change_kinds(BEFORE, AFTER)
    op.create_table(
        "silences",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("matchers", JsonDoc, nullable=False),
        _at("starts_at", nullable=False),
        _at("ends_at", nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        _at("created_at", nullable=False),
        sa.Column("ended_by", sa.String(320), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    op.create_index("ix_silences_ends_at", "silences", ["ends_at"])
    op.create_table(
        "alert_holds",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column(
            "silence_id",
            BigId,
            sa.ForeignKey(
                "silences.id", name="fk_alert_holds_silence_id_silences", ondelete="SET NULL"
            ),
            nullable=True,
        ),
        sa.Column(
            "incident_id",
            BigId,
            sa.ForeignKey(
                "incidents.id", name="fk_alert_holds_incident_id_incidents", ondelete="CASCADE"
            ),
            nullable=True,
        ),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("firing", sa.Boolean(), nullable=False),
        _at("first_seen_at", nullable=False),
        _at("last_seen_at", nullable=False),
        sa.Column("opens", JsonDoc, nullable=False),
        _at("released_at"),
        sa.Column("opened_incident_id", BigId, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_holds")),
    )
    op.create_index(
        "uq_alert_holds_unreleased",
        "alert_holds",
        ["kind", "key"],
        unique=True,
        sqlite_where=sa.text(UNRELEASED),
        postgresql_where=sa.text(UNRELEASED),
    )
    op.create_index("ix_alert_holds_silence", "alert_holds", ["silence_id"])
    op.create_index("ix_alert_holds_incident", "alert_holds", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_holds_incident", table_name="alert_holds")
    op.drop_index("ix_alert_holds_silence", table_name="alert_holds")
    op.drop_index("uq_alert_holds_unreleased", table_name="alert_holds")
    op.drop_table("alert_holds")
    op.drop_index("ix_silences_ends_at", table_name="silences")
    op.drop_table("silences")
    op.execute("DELETE FROM incidents WHERE kind = 'alert'")
    change_kinds(AFTER, BEFORE)
