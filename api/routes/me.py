"""Who the caller is: the console asks once, to show only the buttons its role allows, and to
learn the server's vocabularies and incident state machine (it keeps no copy of its own)."""

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.auth import PrincipalDep
from api.deps import SettingsDep
from api.launcher import prefect_ui_url
from models.enums import (
    ACTIVE_STATUSES,
    ActionStatus,
    IncidentKind,
    IncidentStatus,
    Role,
    Severity,
    SlaTimer,
    Verb,
)
from models.incident import TRANSITIONS

router = APIRouter(tags=["session"])


class Transition(BaseModel):
    """One row of the incident state machine (models/incident.py TRANSITIONS)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: list[IncidentStatus] = Field(
        alias="from", description="The statuses the verb may start from"
    )
    to: IncidentStatus | None = Field(description="The status it leads to; null keeps the status")


class Me(BaseModel):
    name: str
    role: Role
    may_transition: bool  # responder and up: acknowledge, mitigate, execute, dry-run
    may_approve: bool
    may_admin: bool
    prefect_ui_url: str | None  # where the console links flow runs
    statuses: list[IncidentStatus] = Field(description="Incident statuses, in lifecycle order")
    severities: list[Severity] = Field(description="Incident severities, most severe first")
    active_statuses: list[IncidentStatus] = Field(description="The statuses SLA timers run in")
    kinds: list[IncidentKind]
    sla_timers: list[SlaTimer] = Field(description="The SLA timers, in the order they end")
    transitions: dict[Verb, Transition] = Field(description="verb -> where it may start, leads")
    final_action_statuses: list[ActionStatus] = Field(
        description="Action statuses that never change again"
    )


def transitions() -> dict[Verb, Transition]:
    return {
        verb: Transition(from_=[s for s in IncidentStatus if s in sources], to=to)
        for verb, (sources, to) in TRANSITIONS.items()
    }


@router.get("/me")
async def read_me(principal: PrincipalDep, settings: SettingsDep) -> Me:
    """The authenticated principal, its role and what that role may do, with the incident
    statuses (all, and the active ones), severities, kinds, SLA timers, state machine and final
    action statuses."""
    return Me(
        name=principal.name,
        role=principal.role,
        may_transition=principal.allows(Role.RESPONDER),
        may_approve=principal.allows(Role.APPROVER),
        may_admin=principal.allows(Role.ADMIN),
        prefect_ui_url=prefect_ui_url(settings.prefect_ui_url),
        statuses=list(IncidentStatus),
        severities=sorted(Severity, key=lambda s: s.rank),
        active_statuses=list(ACTIVE_STATUSES),
        kinds=list(IncidentKind),
        sla_timers=list(SlaTimer),
        transitions=transitions(),
        final_action_statuses=[s for s in ActionStatus if s.is_terminal],
    )
