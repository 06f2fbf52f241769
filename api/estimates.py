"""Estimates as the API answers them: read each action type's recent runs in the request's
transaction, and scale the default estimates by them (playbooks/estimates.py), in the catalog and
in every plan alike."""

from collections.abc import Collection

from sqlalchemy.ext.asyncio import AsyncSession

from models.services import estimates as service
from playbooks.estimates import RECENT_RUNS, Calibration, default_of


async def calibrations(
    session: AsyncSession, action_types: Collection[str]
) -> dict[str, Calibration]:
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
