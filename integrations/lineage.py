"""The dbt lineage: which nodes feed which, read from the project's `manifest.json`.

Intake groups an alert under an open incident upstream of it (a failing test on a model fed by a
stale source belongs to the source's incident). `Lineage` is built once per manifest version,
with the rest of the manifest (integrations/warehouse.py caches it per file and mtime), and
remembers the closures it has walked, so asking again about an open incident's nodes is a set
lookup.

Node ids are dbt's unique ids (`model.<project>.<name>`, `source.<project>.<source>.<table>`,
`test.<project>.<name>.<hash>`...); their first part is the resource type.
"""

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# nodes that hold data (what a test tests, what an alert's `nodes` name): not tests, exposures...
DATA_TYPES = frozenset({"model", "source", "seed", "snapshot"})
_CACHE_MAX = 4096  # closures remembered per lineage; forgotten all at once past this


def resource_type(node_id: str) -> str:
    return node_id.split(".", 1)[0]


@dataclass(frozen=True, eq=False)
class Lineage:
    """Every node's parents and children (dbt's `parent_map` and `child_map`) and names."""

    parents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    children: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)  # a source's is `source.table`
    _closures: dict[tuple[bool, frozenset[str]], frozenset[str]] = field(
        default_factory=dict, init=False, repr=False
    )

    @classmethod
    def from_manifest(cls, raw: Mapping[str, Any]) -> "Lineage":
        """From a parsed manifest: its `parent_map` where dbt wrote one, otherwise each node's
        `depends_on.nodes`; children are the parents turned around."""
        names: dict[str, str] = {}
        depends: dict[str, tuple[str, ...]] = {}
        for section in ("nodes", "sources", "unit_tests", "exposures", "functions"):
            for node_id, node in (raw.get(section) or {}).items():
                if not isinstance(node, Mapping):
                    continue
                name = str(node.get("name", node_id))
                names[node_id] = f"{node['source_name']}.{name}" if "source_name" in node else name
                depends[node_id] = tuple((node.get("depends_on") or {}).get("nodes") or ())
        parent_map = raw.get("parent_map")
        if isinstance(parent_map, Mapping) and parent_map:
            depends = {node_id: tuple(ids) for node_id, ids in parent_map.items()}
        return cls.from_parents(depends, names=names)

    @classmethod
    def from_parents(
        cls, parents: Mapping[str, Iterable[str]], *, names: Mapping[str, str] | None = None
    ) -> "Lineage":
        frozen = {node_id: tuple(dict.fromkeys(ids)) for node_id, ids in parents.items()}
        children: dict[str, list[str]] = {node_id: [] for node_id in frozen}
        for node_id, ids in frozen.items():
            for parent in ids:
                children.setdefault(parent, []).append(node_id)
        return cls(
            parents=frozen,
            children={node_id: tuple(ids) for node_id, ids in children.items()},
            names=dict(names or {}),
        )

    def downstream_of(self, node_ids: Iterable[str]) -> set[str]:
        """Every node built from any of `node_ids`, however indirectly (not the nodes
        themselves: dbt's graph has no cycles)."""
        return set(self._closure(frozenset(node_ids), down=True))

    def upstream_of(self, node_ids: Iterable[str]) -> set[str]:
        """Every node any of `node_ids` is built from, however indirectly."""
        return set(self._closure(frozenset(node_ids), down=False))

    def is_downstream(
        self, candidate_nodes: Iterable[str], of_nodes: Iterable[str], *, inclusive: bool = False
    ) -> bool:
        """Whether any of `candidate_nodes` is downstream of any of `of_nodes`. A node shared
        by both counts only when `inclusive` (the same model is not downstream of itself)."""
        candidates = frozenset(candidate_nodes)
        of = frozenset(of_nodes)
        if not candidates or not of:
            return False
        if inclusive and candidates & of:
            return True
        return not candidates.isdisjoint(self._closure(of, down=True))

    def ids_of(self, names: Iterable[str]) -> tuple[str, ...]:
        """The data nodes named (`inbox_emails`, a source as `demo.raw_emails`) or given by
        unique id, in the order asked; a name the project does not have is left out."""
        wanted = list(dict.fromkeys(names))
        found = {
            node_id: node_id
            for node_id in self.names
            if node_id in wanted and resource_type(node_id) in DATA_TYPES
        }
        for node_id, name in self.names.items():
            if name in wanted and resource_type(node_id) in DATA_TYPES:
                found.setdefault(name, node_id)
        return tuple(dict.fromkeys(found[name] for name in wanted if name in found))

    def data_parents(self, node_id: str) -> tuple[str, ...]:
        """The models, sources, seeds and snapshots a node (a test) reads directly."""
        return tuple(p for p in self.parents.get(node_id, ()) if resource_type(p) in DATA_TYPES)

    def name_of(self, node_id: str) -> str | None:
        return self.names.get(node_id)

    def _closure(self, start: frozenset[str], *, down: bool) -> frozenset[str]:
        key = (down, start)
        known = self._closures.get(key)
        if known is not None:
            return known
        edges = self.children if down else self.parents
        seen: set[str] = set()
        stack = [nxt for node_id in start for nxt in edges.get(node_id, ())]
        while stack:
            node_id = stack.pop()
            if node_id not in seen:
                seen.add(node_id)
                stack.extend(edges.get(node_id, ()))
        closure = frozenset(seen)
        if len(self._closures) >= _CACHE_MAX:
            self._closures.clear()
        self._closures[key] = closure
        return closure


def is_downstream(
    candidate_nodes: Collection[str],
    of_nodes: Collection[str],
    *,
    lineage: Lineage,
    inclusive: bool = False,
) -> bool:
    """`lineage.is_downstream(...)`: an alert's nodes against an open incident's nodes."""
    return lineage.is_downstream(candidate_nodes, of_nodes, inclusive=inclusive)
