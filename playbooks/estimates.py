"""Estimates, from one source: each action's own model (its `estimate()`, which its plan uses
for the given params and the catalog for its typical run), scaled by how long its recent runs
took.

The scale is the median, over the action type's last RECENT_RUNS successful executions, of what
each took against its default estimate (the model's, before any scaling): a model's shape (a
dbt model costs the same again, a reindex grows with the index) is kept, its level learned.
An action's cost is its duration's (compute per second), so it scales alike. The plan's details
say which basis an estimate has: `default`, or `from the last N runs`.
"""

import statistics
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models.services import estimates as service
from models.settings import Settings
from playbooks.plan import Plan

RECENT_RUNS = 10


@dataclass(frozen=True)
class Estimate:
    seconds: int
    cost: float  # USD


@dataclass(frozen=True)
class Typical:
    """The run the catalog quotes before any params are known: `what` it is ("for one model,
    incremental") and its default estimate, by the action's own `estimate()` (some depend on
    settings: the pause between traffic steps)."""

    what: str
    estimate: Callable[[Settings], tuple[int, float]]

    def default(self, settings: Settings) -> Estimate:
        return Estimate(*self.estimate(settings))


@dataclass(frozen=True)
class Calibration:
    """How long an action type's recent runs took against their default estimates."""

    runs: int = 0
    ratio: float = 1.0

    @classmethod
    def of(cls, runs: Sequence[tuple[float, float]]) -> "Calibration":
        """From (actual seconds, default estimate in seconds) of each recent run."""
        ratios = [actual / default for actual, default in runs if default > 0]
        return cls(len(ratios), statistics.median(ratios)) if ratios else cls()

    @property
    def basis(self) -> str:
        return (
            f"from the last {self.runs} run{'s' if self.runs != 1 else ''}"
            if self.runs
            else "default"
        )

    def scale(self, default: Estimate) -> Estimate:
        if not self.runs:
            return default
        return Estimate(
            max(1, round(default.seconds * self.ratio)), round(default.cost * self.ratio, 4)
        )


def calibrated(plan: Plan, calibration: Calibration) -> Plan:
    """`plan` with its estimates scaled, its details saying on what basis."""
    default = Estimate(plan.estimated_duration, plan.estimated_cost)
    estimate = calibration.scale(default)
    return replace(
        plan,
        estimated_duration=estimate.seconds,
        estimated_cost=estimate.cost,
        details=plan.details
        | {
            "estimate": {
                "basis": calibration.basis,
                "runs": calibration.runs,
                "default_duration": default.seconds,
                "default_cost": default.cost,
            }
        },
    )


def default_of(estimated_duration: int, details: dict[str, Any]) -> float:
    """A recorded run's default estimate: what its plan's details kept, or (recorded before
    estimates were scaled) its estimate itself."""
    kept = details.get("estimate")
    if isinstance(kept, dict) and isinstance(kept.get("default_duration"), int | float):
        return float(kept["default_duration"])
    return float(estimated_duration)


@dataclass(frozen=True)
class Quote:
    """An estimate as the catalog words it (the contract's "10 minutes", "$0.10")."""

    duration: str
    cost: str
    basis: str

    @classmethod
    def of(cls, typical: Typical, settings: Settings, calibration: Calibration) -> "Quote":
        estimate = calibration.scale(typical.default(settings))
        return cls(
            duration_text(estimate.seconds),
            cost_text(estimate.cost),
            f"{calibration.basis}, {typical.what}",
        )


def duration_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = round(seconds / 60)
    return f"{minutes} minutes" if minutes < 90 else f"{round(minutes / 60)} hours"


def cost_text(usd: float) -> str:
    if usd <= 0:
        return "$0"
    if usd >= 0.01:
        return f"${usd:.2f}"
    return f"${usd:.4f}".rstrip("0")


async def calibrations(
    session: AsyncSession, action_types: Collection[str]
) -> dict[str, Calibration]:
    """Each action type's recent runs, read in the caller's transaction, as the scale of its
    default estimates (in the catalog and in every plan alike)."""
    runs = await service.recent_runs(session, action_types=action_types, limit=RECENT_RUNS)
    return {
        action_type: Calibration.of(
            [
                (run.actual_duration, default_of(run.estimated_duration, run.details))
                for run in found
            ]
        )
        for action_type, found in runs.items()
    }
