"""A check's `params`, checked against each action's Params model when the file loads.

The API merges them into every dry-run and execute of the check's incidents, so a name the
action does not take or a value it refuses would fail each of those with 422, long after start-up.
A preset is partial: what it leaves out (rerun_dbt's `task_id`...) the incident or the caller
gives, so only the names and values it has are judged.
"""

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]


def problems(
    params: dict[str, Any], actions: Mapping[str, type[BaseModel]]
) -> Iterator[tuple[Loc, str]]:
    """(where under `params`, what is wrong) for each preset name or value its action (in
    `actions`, each action type's Params model) refuses."""
    for action_type, preset in params.items():
        if action_type in actions and isinstance(preset, dict):  # else CheckSpec says why
            for loc, message in _refused(action_type, actions[action_type], preset):
                yield (action_type, *loc), message


def _refused(
    action_type: str, model: type[BaseModel], preset: dict[str, Any]
) -> Iterator[tuple[Loc, str]]:
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
