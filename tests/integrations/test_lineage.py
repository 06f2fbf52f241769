"""The dbt lineage, from the shipped project's real manifest and from made-up large ones."""

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from integrations.lineage import Lineage, is_downstream, resource_type
from integrations.warehouse import ManifestMissing, load_manifest

# dbt keeps its log file open for the life of the process; not ours to close.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

RAW = "source.intervene_demo.demo.raw_emails"
RUNS = "source.intervene_demo.demo.agent_runs"
INBOX = "model.intervene_demo.inbox_emails"
TRIAGE = "model.intervene_demo.triage_results"


@pytest.fixture
def lineage(dbt_dirs: dict[str, Path]) -> Lineage:
    """The shipped project's, from the manifest `intervene warehouse prepare` writes."""
    return load_manifest(dbt_dirs["target"] / "manifest.json").lineage


def data_tests_of(lineage: Lineage, model: str) -> set[str]:
    return {n for n in lineage.children[model] if resource_type(n) == "test"}


def test_the_shipped_project_downstream_of_its_source(lineage: Lineage) -> None:
    downstream = lineage.downstream_of([RAW])

    assert {n for n in downstream if resource_type(n) == "model"} == {INBOX, TRIAGE}
    assert data_tests_of(lineage, INBOX) | data_tests_of(lineage, TRIAGE) <= downstream
    assert len(data_tests_of(lineage, INBOX)) == 2  # unique and not_null on email_id
    assert RAW not in downstream
    assert lineage.downstream_of([RUNS]) == set()
    assert lineage.downstream_of([TRIAGE]) == data_tests_of(lineage, TRIAGE)


def test_the_shipped_project_upstream_and_names(lineage: Lineage) -> None:
    [test] = [t for t in data_tests_of(lineage, TRIAGE) if ".not_null_" in t]

    assert lineage.upstream_of([TRIAGE]) == {INBOX, RAW}
    assert lineage.upstream_of([test]) == {TRIAGE, INBOX, RAW}
    assert lineage.upstream_of([RAW]) == set()
    assert lineage.data_parents(test) == (TRIAGE,)
    assert lineage.name_of(test) == "not_null_triage_results_email_id"
    assert lineage.name_of(RAW) == "demo.raw_emails"
    assert lineage.name_of(INBOX) == "inbox_emails"
    assert lineage.name_of("model.elsewhere.ghost") is None


def test_is_downstream(lineage: Lineage) -> None:
    assert is_downstream([TRIAGE], [RAW], lineage=lineage)
    assert is_downstream([RUNS, TRIAGE], [INBOX], lineage=lineage)  # any of them
    assert not is_downstream([RAW], [TRIAGE], lineage=lineage)  # upstream is not downstream
    assert not is_downstream([INBOX], [INBOX], lineage=lineage)  # nor is the same node
    assert is_downstream([INBOX], [INBOX], lineage=lineage, inclusive=True)
    assert not is_downstream([TRIAGE], [RUNS], lineage=lineage)  # unrelated
    assert not is_downstream([], [RAW], lineage=lineage)
    assert not is_downstream([TRIAGE], [], lineage=lineage)
    assert not is_downstream(["model.elsewhere.ghost"], [RAW], lineage=lineage)


def test_the_manifest_is_read_once_per_version(dbt_dirs: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes((dbt_dirs["target"] / "manifest.json").read_bytes())

    first = load_manifest(path)

    assert load_manifest(path) is first
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    again = load_manifest(path)
    assert again is not first
    assert again.lineage.parents == first.lineage.parents
    with pytest.raises(ManifestMissing, match="run `intervene warehouse prepare`"):
        load_manifest(tmp_path / "absent.json")


def test_without_a_parent_map_depends_on_is_read() -> None:
    raw = {
        "nodes": {
            "model.p.orders": {"name": "orders", "depends_on": {"nodes": ["source.p.erp.raw"]}},
            "model.p.revenue": {"name": "revenue", "depends_on": {"nodes": ["model.p.orders"]}},
            "test.p.unique_orders_id.abc": {
                "name": "unique_orders_id",
                "depends_on": {"nodes": ["model.p.orders"]},
            },
        },
        "sources": {"source.p.erp.raw": {"name": "raw", "source_name": "erp"}},
    }

    lineage = Lineage.from_manifest(raw)

    assert lineage.downstream_of(["source.p.erp.raw"]) == {
        "model.p.orders",
        "model.p.revenue",
        "test.p.unique_orders_id.abc",
    }
    assert lineage.name_of("source.p.erp.raw") == "erp.raw"
    assert lineage.data_parents("test.p.unique_orders_id.abc") == ("model.p.orders",)


def big_manifest(layers: int, width: int) -> dict[str, Any]:
    """`layers` of `width` models, each reading two models of the layer before (i and i // 2:
    a source's reach doubles every layer), one test each: 2 * layers * width nodes."""
    parent_map: dict[str, list[str]] = {}
    for layer in range(layers):
        for i in range(width):
            model = f"model.big.m_{layer}_{i}"
            parent_map[model] = (
                [f"model.big.m_{layer - 1}_{i}", f"model.big.m_{layer - 1}_{i // 2}"]
                if layer
                else [f"source.big.raw.t_{i}"]
            )
            parent_map[f"test.big.not_null_m_{layer}_{i}.0123456789"] = [model]
    return {"nodes": {}, "sources": {}, "parent_map": parent_map}


def test_a_few_thousand_nodes_are_fast(tmp_path: Path) -> None:
    raw = big_manifest(layers=50, width=40)  # 4,000 nodes, 6,000 edges
    started = time.perf_counter()
    lineage = Lineage.from_manifest(raw)
    built = time.perf_counter() - started
    sources = [f"source.big.raw.t_{i}" for i in range(40)]

    started = time.perf_counter()
    everything = lineage.downstream_of(sources[:1])
    first_walk = time.perf_counter() - started
    started = time.perf_counter()
    answers = [
        lineage.is_downstream([f"model.big.m_49_{i % 40}"], sources[i % 40 : i % 40 + 1])
        for i in range(2000)
    ]
    asked = time.perf_counter() - started

    assert len(everything) > 3000  # the mixing reaches nearly everything from one source
    assert all(answers)
    assert built < 0.5
    assert first_walk < 0.05
    assert asked < 0.5  # each source's closure walked once, then remembered
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(raw))
    assert load_manifest(path).lineage.upstream_of(["model.big.m_1_0"]) >= {
        "model.big.m_0_0",
        "source.big.raw.t_0",
    }
