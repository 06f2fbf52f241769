"""The incident report: the facts (models/services/reports.py) laid out as data, and as the
Markdown write-up on-call teams owe their organisation."""

import json
from datetime import datetime

from api.schemas.reports import (
    IncidentReport,
    ReportAction,
    ReportMeasurement,
    ReportNotification,
    ReportStage,
    ReportStep,
    ReportWriting,
)
from models.action import Action
from models.check_run import CheckRun
from models.enums import Severity, SlaTimer
from models.services.reports import ReportFacts
from models.sla import SlaTargets, timer_status

STAGES = (
    ("opened", None),
    ("acknowledged", SlaTimer.ACKNOWLEDGE),
    ("mitigated", SlaTimer.MITIGATE),
    ("resolved", SlaTimer.RESOLVE),
    ("closed", None),
)
TO_BE_WRITTEN = "_To be written._"


def report_of(
    facts: ReportFacts, targets: dict[Severity, SlaTargets], now: datetime
) -> IncidentReport:
    incident = facts.incident
    stages = []
    for stage, timer in STAGES:
        at = incident.created_at if stage == "opened" else getattr(incident, f"{stage}_at")
        status = timer_status(incident, timer, targets=targets, now=now) if timer else None
        stages.append(
            ReportStage(
                stage=stage,
                at=at,
                after_seconds=(at - incident.created_at).total_seconds() if at else None,
                target_seconds=status.target_seconds if status else None,
                due_at=status.due_at if status else None,
                state=status.state.value if status else None,
            )
        )
    text = facts.text
    return IncidentReport(
        incident_id=incident.id,
        summary=incident.summary,
        key=incident.key,
        kind=incident.kind.value,
        severity=incident.severity.value,
        status=incident.status.value,
        details=incident.details,
        stages=stages,
        measurements=[_measurement(r) for r in facts.runs],
        actions=[_action(a) for a in facts.actions],
        timeline=[ReportStep.model_validate(e, from_attributes=True) for e in facts.timeline],
        notifications=[
            ReportNotification(
                at=n.delivered_at or n.created_at,
                recipient=n.recipient,
                medium=n.medium,
                status=n.status,
            )
            for n in facts.notifications
        ],
        writing=ReportWriting(
            root_cause=text.root_cause if text else "",
            follow_ups=text.follow_ups if text else "",
            version=text.version if text else 0,
            updated_by=text.updated_by if text else None,
            updated_at=text.updated_at if text else None,
        ),
        generated_at=now,
    )


def _measurement(run: CheckRun) -> ReportMeasurement:
    return ReportMeasurement(
        check_id=run.check_id,
        at=run.started_at,
        value=run.value,
        threshold=run.threshold,
        passed=run.passed,
        trigger=run.trigger,
        run_id=run.id,
    )


def _action(action: Action) -> ReportAction:
    duration = action.actual_duration
    if duration is None and action.started_at and action.completed_at:
        duration = (action.completed_at - action.started_at).total_seconds()
    return ReportAction(
        id=action.id,
        action_type=action.action_type,
        dry_run=action.dry_run,
        status=action.status,
        params=action.params,
        plan=list(action.changes or []),
        message=action.message,
        requested_by=action.requested_by,
        approved_by=action.approved_by,
        rollback_of=action.rollback_of,
        created_at=action.created_at,
        started_at=action.started_at,
        completed_at=action.completed_at,
        duration_seconds=duration,
        flow_run_url=action.flow_run_url,
    )


# -- Markdown ------------------------------------------------------------------------------


def markdown(report: IncidentReport) -> str:
    lines = [
        f"# Incident #{report.incident_id}: {_inline(report.summary)}",
        "",
        f"**Severity** {report.severity} · **Status** {report.status} · "
        f"**Kind** {report.kind} · **Key** `{_code(report.key)}`",
        "",
        "## Summary",
        "",
        _inline(report.summary),
    ]
    if report.details:
        lines += ["", "| Detail | Value |", "|---|---|"]
        lines += [f"| {_cell(k)} | {_cell(_value(v))} |" for k, v in sorted(report.details.items())]
    lines += ["", "## Impact window", "", "| Stage | At | After opening | SLA target | SLA |"]
    lines.append("|---|---|---|---|---|")
    for stage in report.stages:
        lines.append(
            f"| {stage.stage} | {_time(stage.at)} | {_duration(stage.after_seconds)} | "
            f"{_duration(stage.target_seconds)} | {stage.state or '—'} |"
        )
    lines += ["", "## Measurements", ""]
    if report.measurements:
        lines.append("| At | Check | Value | Threshold | Result | Trigger |")
        lines.append("|---|---|---|---|---|---|")
        for m in report.measurements:
            result = {True: "pass", False: "FAIL", None: "error"}[m.passed]
            value = "—" if m.value is None else f"{m.value:g}"
            lines.append(f"| {_time(m.at)} | {_cell(m.check_id)} | {value} | {m.threshold:g} | "
                         f"{result} | {m.trigger} |")  # fmt: skip
    else:
        lines.append("_No check measured this incident._")
    lines += ["", "## Actions", ""]
    if not report.actions:
        lines.append("_No playbook was run._")
    for action in report.actions:
        lines += _action_lines(action)
    lines += ["", "## Who did what", ""]
    lines += [_step_line(step) for step in report.timeline]
    if report.notifications:
        lines += ["", "## Who was told", ""]
        lines += [
            f"- {_time(n.at)} {_inline(n.recipient)} by {n.medium}: {n.status}"
            for n in report.notifications
        ]
    writing = report.writing
    lines += ["", "## Root cause", "", writing.root_cause.strip() or TO_BE_WRITTEN]
    lines += ["", "## Follow-ups", "", writing.follow_ups.strip() or TO_BE_WRITTEN, ""]
    if writing.version:
        by, at = _inline(writing.updated_by or ""), _time(writing.updated_at)
        lines.append(f"_Version {writing.version}, last edited by {by} at {at}._")
    lines.append(f"_Generated by Intervene at {_time(report.generated_at)}._")
    return "\n".join(lines) + "\n"


def _step_line(step: ReportStep) -> str:
    line = f"- {_time(step.at)} **{step.verb}** by {_inline(step.actor)}"
    if step.from_status != step.to_status:
        line += f" ({step.from_status or 'new'} → {step.to_status})"
    return line + (f": {_inline(step.notes)}" if step.notes else "")


def _action_lines(action: ReportAction) -> list[str]:
    kind = "dry-run" if action.dry_run else "rollback" if action.rollback_of else "run"
    head = f"### #{action.id} {action.action_type} ({kind}): {action.status}"
    lines = [head, ""]
    who = f"- Requested by {_inline(action.requested_by)}"
    if action.approved_by:
        who += f", approved by {_inline(action.approved_by)}"
    lines.append(who + f" at {_time(action.created_at)}")
    if action.rollback_of:
        lines.append(f"- Rolls back action #{action.rollback_of}")
    lines.append(f"- Params: `{_code(json.dumps(action.params, sort_keys=True))}`")
    if action.plan:
        lines.append("- Plan:")
        lines += [f"  - {_inline(change)}" for change in action.plan]
    if action.started_at:
        lines.append(
            f"- Ran {_time(action.started_at)} → {_time(action.completed_at)}"
            f" ({_duration(action.duration_seconds)})"
        )
    if action.message:
        lines.append(f"- Result: {_inline(action.message)}")
    if action.flow_run_url:
        lines.append(f"- Prefect run: {action.flow_run_url}")
    return [*lines, ""]


def _time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{seconds:.1f} s" if seconds < 10 else f"{secs} s"


def _value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _inline(text: str) -> str:
    """One line of text from the incident, shown as itself (no HTML, no line breaks)."""
    return " ".join(text.split()).replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: str) -> str:
    return _inline(text).replace("|", "\\|")


def _code(text: str) -> str:
    return " ".join(text.split()).replace("`", "'")
