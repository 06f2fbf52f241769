"""What an action will do, computed before it runs: the dry-run's answer and execute's guide."""

from dataclasses import dataclass, field
from typing import Any


class ParamsError(ValueError):
    """Parameters that parse but do not make sense (e.g. a model the project does not have).

    `field` names the parameter, as in `params.models`, for the 422's field list.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Plan:
    message: str
    details: dict[str, Any]
    changes: list[str]
    estimated_duration: int  # seconds
    estimated_cost: float  # USD
    requires_approval: bool
    rollback_available: bool = False
    prior_state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Preflight:
    """What an action found out before it is planned: `problem` when it cannot run now."""

    problem: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
