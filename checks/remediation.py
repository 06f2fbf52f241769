"""A remediation policy: which action fixes an incident, with what params, and how far to trust it.

    remediation:
      action: rerun_dbt                  # an action type (not an alias) that applies to the kind
      params: {models: [inbox_emails]}   # over the check's preset for the action, if any
      mode: auto                         # auto: run it; propose (default): suggest the playbook
      verify: true                       # after success, run the check again: it judges the fix
      max_attempts: 2                    # automatic attempts per incident before giving up
      rollback_on_failed_verification: false   # only for an action that supports rollback
      resolve_on_verify: true            # a verified fix resolves the incident (else mitigated)
      verify_within_seconds: 900         # a routed alert's: its source must resolve it this soon

The model judges the policy's shape; `policy_problems` judges it against the catalog for one
kind of incident, whatever declares it (a check now, a rule routing external alerts later).
"""

from collections.abc import Iterator, Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from checks import presets
from checks.suggestable import Name, Suggestable
from models.enums import IncidentKind

_T = TypeVar("_T")
_NAME: TypeAdapter[str] = TypeAdapter(Name)
_BOOL = TypeAdapter(bool)


class RemediationPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Name
    params: dict[str, Any] = Field(default_factory=dict)
    mode: Literal["auto", "propose"] = "propose"
    verify: bool = True
    max_attempts: int = Field(default=2, ge=1, le=10, description="automatic attempts per incident")
    rollback_on_failed_verification: bool = False
    resolve_on_verify: bool = True
    verify_within_seconds: int = Field(
        default=900,
        ge=10,
        le=86_400,
        description="a routed alert's fix is verified when its source resolves the alert within"
        " this many seconds of the action (a check's, by its run after the action)",
    )

    def run_params(self, preset: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """The action's params for a run: `preset` (per action type, a check's `params`) for
        this action, overlaid with the policy's own."""
        return {**preset.get(self.action, {}), **self.params}


def policy_problems(
    policy: Mapping[str, Any], kind: IncidentKind | None, suggestable: Suggestable
) -> Iterator[tuple[presets.Loc, str]]:
    """(where in `policy`, what is wrong) for each thing the catalog refuses in the policy as the
    remediation of `kind` incidents (None: a kind refused elsewhere, not judged here). What has
    the wrong shape is the model's to say, and skipped here."""
    action = _read(_NAME, policy.get("action"))
    if action is None:
        return
    if action not in suggestable.actions:
        known = ", ".join(sorted(suggestable.actions))
        if action in suggestable.aliases:
            said = f"{action!r} is a playbook alias: a remediation names an action type"
        else:
            said = f"unknown action {action!r}"
        yield ("action",), f"{said} (known: {known})"
        return
    kinds = suggestable.applies_to.get(action, frozenset())
    if kind is not None and kind not in kinds:
        applies = ", ".join(sorted(kinds)) or "none"
        yield ("action",), f"{action} does not apply to {kind} incidents (it applies to: {applies})"
    params = policy.get("params")
    if isinstance(params, dict):  # partial, like a preset: the incident completes it
        for loc, message in presets.problems({action: params}, suggestable.actions):
            yield ("params", *loc[1:]), message
    rollback = _read(_BOOL, policy.get("rollback_on_failed_verification"))
    if rollback and action not in suggestable.rollback:
        yield ("rollback_on_failed_verification",), f"{action} does not support rollback"


def _read(adapter: TypeAdapter[_T], value: object) -> _T | None:
    """`value` as the model reads its field (`adapter`), or None if it refuses it."""
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None
