"""What an action will do, computed before it runs: the dry-run's answer and execute's guide."""

from dataclasses import dataclass, field
from typing import Any


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
