"""rerun_eval: run an agent's declared checks now and report each result.

Verifies a fix: the same evaluation the schedules run (the checks package), on demand, for one agent
(or some of its checks). Failing checks open or count incidents as scheduled runs do; when every
check passes, the incident's timeline says so. Read-only on the warehouse; nothing to roll back.
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from checks.config import CheckSpec
from models.errors import ParamsError
from playbooks.plan import Plan

ACTION_TYPE = "rerun_eval"
SECONDS_PER_CHECK = 2  # the default estimate (playbooks/estimates.py scales it)
Name = Annotated[str, StringConstraints(min_length=1, max_length=120, pattern=r"^[\w.-]+$")]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: Name
    checks: list[Name] | None = None


PARAMS_DOC = {
    "agent": "string (required)",
    "checks": "array[string] (optional, default: all of the agent's checks)",
}


def estimate(checks: int) -> tuple[int, float]:
    """Seconds and USD by default (read-only queries: no cost counted)."""
    return SECONDS_PER_CHECK * checks, 0.0


def chosen(params: Params, declared: dict[str, CheckSpec]) -> list[CheckSpec]:
    mine = {cid: spec for cid, spec in declared.items() if spec.agent == params.agent}
    if not mine:
        agents = sorted({spec.agent for spec in declared.values()})
        raise ParamsError(
            "params.agent", f"no checks for agent {params.agent!r} (agents: {', '.join(agents)})"
        )
    unknown = sorted(set(params.checks or []) - set(mine))
    if unknown:
        raise ParamsError("params.checks", f"not checks of {params.agent}: {', '.join(unknown)}")
    return [mine[cid] for cid in (params.checks or sorted(mine))]


def plan(params: Params, declared: dict[str, CheckSpec]) -> Plan:
    specs = chosen(params, declared)
    names = ", ".join(spec.id for spec in specs)
    seconds, usd = estimate(len(specs))
    return Plan(
        message=f"Run {len(specs)} check(s) of {params.agent} now: {names}",
        details={"agent": params.agent, "checks": [spec.id for spec in specs]},
        changes=[
            f"Runs {len(specs)} check(s) of {params.agent} now: {names}",
            "Failing checks open or count incidents, as scheduled runs do",
            "Read-only on the warehouse; nothing to roll back",
        ],
        estimated_duration=seconds,
        estimated_cost=usd,
        requires_approval=False,
    )
