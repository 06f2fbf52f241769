"""The incident report as last published on Prefect: the newest timeline entry it showed and
the action run it is shown on.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "incident_report_artifacts",
        sa.Column("incident_id", BigId, nullable=False),
        sa.Column("entry_id", BigId, nullable=False),
        sa.Column("flow_run_id", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_report_artifacts_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_incident_report_artifacts")),
    )
    # what is there already counts as shown: only what changes from now on is published (an
    # upgrade does not put a burst of artifacts on old runs)
    op.execute(
        """
        INSERT INTO incident_report_artifacts (incident_id, entry_id, flow_run_id, published_at)
        SELECT incident_id, entry_id, flow_run_id, CURRENT_TIMESTAMP FROM (
            SELECT i.id AS incident_id,
                (SELECT max(t.id) FROM incident_timeline t WHERE t.incident_id = i.id)
                    AS entry_id,
                (SELECT a.flow_run_id FROM actions a
                 WHERE a.incident_id = i.id AND a.flow_run_id IS NOT NULL
                 ORDER BY a.id DESC LIMIT 1) AS flow_run_id
            FROM incidents i
        ) AS seen
        WHERE entry_id IS NOT NULL AND flow_run_id IS NOT NULL
        """
    )


def downgrade() -> None:
    op.drop_table("incident_report_artifacts")
