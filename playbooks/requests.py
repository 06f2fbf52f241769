"""What the engine is asked (a dry-run, an execute, a rollback) and what it answers (Recorded).

The API's request bodies satisfy the protocols; an approved request asks with the dataclasses.
"""

from dataclasses import dataclass
from typing import Any, Protocol

from models.action import Action
from models.services.actions import Quota
from playbooks.plan import Plan


class DryRunRequest(Protocol):
    """What a dry-run names (the API's request body is one)."""

    @property
    def action_type(self) -> str: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def requested_by(self) -> str: ...


class ExecuteRequest(DryRunRequest, Protocol):
    @property
    def approved_by(self) -> str | None: ...


class RollbackRequest(Protocol):
    @property
    def approved_by(self) -> str | None: ...
    @property
    def requested_by(self) -> str: ...


@dataclass(frozen=True)
class Execution:
    """An execute the service asks itself for (an approved request's)."""

    action_type: str
    params: dict[str, Any]
    requested_by: str
    approved_by: str | None


@dataclass(frozen=True)
class Rollback:
    """A rollback the service asks itself for (an approved request's)."""

    approved_by: str | None
    requested_by: str


@dataclass(frozen=True)
class Recorded:
    action: Action
    quota: Quota | None = None
    plan: Plan | None = None
