"""What people write in an incident's report (root cause, follow-ups), versioned: everything
else in the report is read from the incident, its timeline, actions and check runs
(models/services/reports.py). And what of it was last published on Prefect."""

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow


class ReportText(Base):
    __tablename__ = "incident_reports"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    root_cause: Mapped[str] = mapped_column(Text, default="")
    follow_ups: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(default=1)  # 1 for the first save, one more each time
    updated_by: Mapped[str] = mapped_column(String(320))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReportArtifact(Base):
    """The report as last published on Prefect (deployments/report_artifacts.py): the newest
    timeline entry it showed, so a later entry makes it due again."""

    __tablename__ = "incident_report_artifacts"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    entry_id: Mapped[int] = mapped_column(BigId)
    flow_run_id: Mapped[str] = mapped_column(String(64))  # the action run it is shown on
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
