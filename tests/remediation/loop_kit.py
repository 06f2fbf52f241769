"""What the loop's tests share: an auto check, its failing and passing runs, a Verifier that
records the check's re-run (its value scripted), and the hooks' end of an action.

The loop runs against the real app database and the real playbook service; Prefect is the
RecordingLauncher (tests/fakes.py) and the verification run is recorded by checks/runner.py as
the check's flow would. The whole loop on the real stack is tests/remediation/test_on_stack.py.
"""

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from checks.config import CheckSpec
from checks.remediation import RemediationPolicy
from checks.runner import record_many
from models.action import Action
from models.base import utcnow
from models.check_run import CheckRun
from models.db import Database, transaction
from models.enums import ActionStatus, RunTrigger
from models.errors import Unavailable
from models.remediation import Remediation
from models.services.actions import advance_action
from models.services.remediations import of_incident
from models.settings import Settings
from playbooks.service import Playbooks
from remediation.loop import Remediator
from tests.api.test_checks import SHIPPED, measurement

FRESHNESS = SHIPPED["data_freshness_inbox"]  # fails above 300 s


def auto(spec: CheckSpec = FRESHNESS, **policy: Any) -> CheckSpec:
    fields: dict[str, Any] = {"action": "rerun_dbt", "mode": "auto", "max_attempts": 2}
    return spec.model_copy(update={"remediation": RemediationPolicy(**(fields | policy))})


@dataclass
class ScriptedVerifier:
    """Records the check's verification run as its flow would, with `value` as measured."""

    database: Database
    settings: Settings
    specs: dict[str, CheckSpec]
    value: float = 10.0  # fresh: the fix worked
    context: dict[str, Any] = field(default_factory=dict)  # a planner check's version...
    started: list[str] = field(default_factory=list)
    out_of_reach: int = 0  # this many starts fail first, as with Prefect down

    async def start(self, check_id: str, *, remediation_id: int, incident_id: int) -> str:
        if self.out_of_reach:
            self.out_of_reach -= 1
            raise Unavailable("Prefect could not start check/" + check_id)
        flow_run_id = str(uuid.uuid4())
        spec = self.specs[check_id]
        measured = replace(measurement(spec, value=self.value), context=self.context)
        await record_many(
            [(spec, measured)],
            self.database,
            self.settings,
            trigger=RunTrigger.VERIFICATION,
            flow_run_id=flow_run_id,
        )
        self.started.append(flow_run_id)
        return flow_run_id


def remediator(
    db: Database, settings: Settings, playbooks: Playbooks, *specs: CheckSpec, owner: str = "t"
) -> tuple[Remediator, ScriptedVerifier]:
    by_id = {spec.id: spec for spec in specs}
    verifier = ScriptedVerifier(db, settings, by_id)
    return Remediator(db, settings, playbooks, by_id, verifier, owner=owner), verifier


async def fail(db: Database, settings: Settings, spec: CheckSpec, value: float = 900) -> CheckRun:
    """A scheduled run that finds the violation (opens or counts the incident)."""
    runs = await record_many([(spec, measurement(spec, value=value))], db, settings)
    return runs[0]


async def finish(db: Database, action_id: int | None, status: ActionStatus) -> None:
    """What the action's state hooks write when its flow run ends."""
    assert action_id is not None
    async with transaction(db.writer) as session:
        await advance_action(session, action_id=action_id, status=status, at=utcnow())


async def attempts(db: Database, incident_id: int | None) -> list[Remediation]:
    assert incident_id is not None
    async with transaction(db.reader) as session:
        return await of_incident(session, incident_id)


async def action(db: Database, action_id: int | None) -> Action:
    async with transaction(db.reader) as session:
        found = await session.get(Action, action_id)
    assert found is not None
    return found
