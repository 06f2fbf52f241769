"""Every table, imported once so `Base.metadata` is complete (Alembic and tests use this)."""

from models.access import ApiToken, ApprovalRequest, AuditEntry
from models.action import Action
from models.alert_hold import AlertHold, Silence
from models.base import Base
from models.check_run import CheckRun
from models.event import Event, EventRetention
from models.incident import Incident, TimelineEntry
from models.installation import Installation
from models.notification import Escalation, Notification
from models.oncall import OnCallOverride
from models.planner import PlannerChange, PlannerState
from models.remediation import AutomationState, Remediation
from models.report import ReportArtifact, ReportText
from models.webhook import Webhook, WebhookDelivery

__all__ = [
    "Action",
    "AlertHold",
    "ApiToken",
    "ApprovalRequest",
    "AuditEntry",
    "AutomationState",
    "Base",
    "CheckRun",
    "Escalation",
    "Event",
    "EventRetention",
    "Incident",
    "Installation",
    "Notification",
    "OnCallOverride",
    "PlannerChange",
    "PlannerState",
    "Remediation",
    "ReportArtifact",
    "ReportText",
    "Silence",
    "TimelineEntry",
    "Webhook",
    "WebhookDelivery",
]
