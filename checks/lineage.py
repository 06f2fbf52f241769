"""What a check watches in the dbt project (`watches:` in warehouse/checks.yml), resolved against
the project's manifest: the nodes its incident names (`metadata.dbt_nodes`), and the lineage
that lets a failing run join the incident of a node upstream of them
(models/services/check_related.py)."""

from collections.abc import Iterable
from dataclasses import dataclass

from checks.config import CheckSpec
from integrations.lineage import Lineage
from integrations.warehouse import DbtProject, ManifestMissing
from models.settings import Settings


@dataclass(frozen=True)
class Watched:
    lineage: Lineage

    def nodes(self, spec: CheckSpec) -> tuple[str, ...]:
        return self.lineage.ids_of(spec.watches) if spec.watches else ()

    def downstream(self, nodes: tuple[str, ...], of: tuple[str, ...]) -> bool:
        """A watched node downstream of a failing one (strictly, as for dbt's own results: a
        check on the failing node itself is another failure of it)."""
        return self.lineage.is_downstream(nodes, of)


def watched(settings: Settings, specs: Iterable[CheckSpec]) -> Watched | None:
    """The project's lineage when one of `specs` watches a node and the project was parsed."""
    if not any(spec.watches for spec in specs):
        return None
    try:
        return Watched(DbtProject.from_settings(settings).manifest().lineage)
    except ManifestMissing:
        return None
