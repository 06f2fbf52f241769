"""What the checks know of the playbook catalog (`Suggestable`), and the names both spell.

The playbook catalog gives it (playbooks/catalog.py, `SUGGESTABLE`): the checks engine sits
below the playbooks and does not import them. A check's `playbooks`, their preset `params` and
its `remediation` policy (checks/remediation.py) are judged against it when the file loads.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BaseModel, StringConstraints

from models.enums import IncidentKind

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$", min_length=1, max_length=120)]


@dataclass(frozen=True)
class Suggestable:
    """The playbooks a check may suggest: each action type's Params model, and the aliases;
    for a remediation, the incident kinds each action applies to and those it can roll back.

    An action `applies_to` leaves out applies to no kind: no remediation may name it.
    """

    actions: Mapping[str, type[BaseModel]]
    aliases: frozenset[str] = frozenset()
    applies_to: Mapping[str, frozenset[IncidentKind]] = field(default_factory=dict)
    rollback: frozenset[str] = frozenset()

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.actions) | self.aliases
