"""A check's `params`, checked against each action's Params model when the file loads.

The API merges them into every dry-run and execute of the check's incidents, so a name the
action does not take or a value it refuses would fail each of those with 422, long after start-up.
A preset is partial: what it leaves out (rerun_dbt's `task_id`...) the incident or the caller
gives, so only the names and values it has are judged.
"""

from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from flows.playbook_names import ACTION_TYPES

Loc = tuple[str | int, ...]


def problems(params: dict[str, Any]) -> Iterator[tuple[Loc, str]]:
    """(where under `params`, what is wrong) for each preset name or value its action refuses."""
    for action_type, preset in params.items():
        if action_type in ACTION_TYPES and isinstance(preset, dict):  # else CheckSpec says why
            for loc, message in _refused(action_type, preset):
                yield (action_type, *loc), message


def _refused(action_type: str, preset: dict[str, Any]) -> Iterator[tuple[Loc, str]]:
    # Here, not at the top: the registry imports the flows, and rerun_eval imports the loader.
    from flows.registry import ACTIONS

    model = ACTIONS[action_type].params_model
    try:
        model.model_validate(preset)
    except ValidationError as exc:
        for error in exc.errors():
            loc = error["loc"]
            if not loc or loc[0] not in preset:  # a field the request completes
                continue
            if error["type"] == "extra_forbidden":
                known = ", ".join(sorted(model.model_fields))
                yield loc, f"unknown param {loc[0]!r} for {action_type} (known: {known})"
            else:
                yield loc, error["msg"]
