"""Which finished flow runs open, count or resolve `pipeline` incidents, and which are ignored.

A run counts when it belongs to a deployment, is not one of Intervene's own flows (the action
flows, the check flow, or anything tagged `intervene`), and matches the settings' filter:
INTERVENE_PIPELINE_DEPLOYMENTS (`<flow>/<deployment>` names, `*` wildcards) or
INTERVENE_PIPELINE_TAGS (any one of them). Failed and crashed runs open or count; a completed
run resolves; any other state is ignored.
"""

from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase

from models.settings import Settings
from playbooks.catalog import ACTIONS

CHECK_FLOW = "check"  # flows/checks/flow.py's FLOW_NAME (tests/pipelines keep them equal)
OWN_FLOWS = frozenset({*ACTIONS, CHECK_FLOW})
OWN_TAG = "intervene"


class Verdict(StrEnum):
    FAILURE = "failure"  # open or count the deployment's incident
    SUCCESS = "success"  # resolve the deployment's incident
    IGNORE = "ignore"


FAILED_STATES = frozenset({"FAILED", "CRASHED"})


@dataclass(frozen=True)
class Judged:
    verdict: Verdict
    reason: str


@dataclass(frozen=True)
class Watch:
    deployments: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> "Watch":
        return cls(tuple(settings.pipeline_deployments), tuple(settings.pipeline_tags))

    @property
    def watches_anything(self) -> bool:
        return bool(self.deployments or self.tags)

    def matches(self, deployment: str, tags: list[str]) -> bool:
        return any(fnmatchcase(deployment, pattern) for pattern in self.deployments) or bool(
            set(self.tags) & set(tags)
        )

    def judge(
        self, *, flow_name: str, deployment: str | None, state_type: str, tags: list[str]
    ) -> Judged:
        """What a finished run means to Intervene, and why."""
        if flow_name in OWN_FLOWS or OWN_TAG in tags:
            return Judged(Verdict.IGNORE, f"{flow_name} is one of Intervene's own flows")
        if deployment is None:
            return Judged(Verdict.IGNORE, f"a run of {flow_name} outside any deployment")
        if not self.matches(deployment, tags):
            return Judged(
                Verdict.IGNORE,
                f"{deployment} is not watched (INTERVENE_PIPELINE_DEPLOYMENTS, "
                "INTERVENE_PIPELINE_TAGS)",
            )
        if state_type in FAILED_STATES:
            return Judged(Verdict.FAILURE, f"a watched run of {deployment} is {state_type}")
        if state_type == "COMPLETED":
            return Judged(Verdict.SUCCESS, f"a watched run of {deployment} completed")
        return Judged(Verdict.IGNORE, f"state {state_type or 'unknown'} is not final")
