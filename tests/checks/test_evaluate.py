"""Measuring the shipped checks on a real DuckDB and a real PostgreSQL warehouse."""

from checks.evaluate import measure, measure_batch
from integrations.warehouse import DbtProject, open_warehouse
from models.settings import Settings
from playbooks.catalog import load_checks

CHECKS = load_checks(Settings().checks_file)


def test_the_demo_story_on_a_fresh_warehouse(warehouse: DbtProject) -> None:
    results = {cid: measure(spec, warehouse.warehouse_url) for cid, spec in CHECKS.items()}

    assert all(r.error is None for r in results.values()), {k: r.error for k, r in results.items()}
    fresh = results["data_freshness_inbox"]
    assert fresh.value is not None
    assert 0 <= fresh.value < 300
    assert fresh.passed is True
    assert results["triage_quality"].passed is True
    assert results["triage_quality"].context["runs"] == 480
    assert results["triage_cost"].passed is True
    assert results["triage_latency"].passed is False  # the demo's blown latency budget
    latency = results["triage_latency"].value
    assert latency is not None
    assert latency > 1000
    canary = results["planner_canary"]
    assert canary.passed is False
    assert canary.value is not None
    assert round(canary.value, 1) == 6.1
    assert canary.context["version"] == "v1.2.3"
    assert canary.context["stable"] == "v1.2.2"
    assert all(r.duration_ms >= 0 for r in results.values())


def test_a_query_error_is_reported_not_raised(warehouse: DbtProject) -> None:
    broken = CHECKS["triage_cost"].model_copy(update={"query": "select nope from nowhere"})

    result = measure(broken, warehouse.warehouse_url)

    assert result.passed is None
    assert result.value is None
    assert result.error is not None
    assert "nowhere" in result.error


def test_no_value_is_an_error(warehouse: DbtProject) -> None:
    query = "select sum(cost_usd) as value from agent_runs where agent = 'nobody'"
    empty = CHECKS["triage_cost"].model_copy(update={"query": query})

    result = measure(empty, warehouse.warehouse_url)

    assert result.error == "ValueError: the query returned no value (NULL)"


def test_an_unreachable_warehouse_is_an_error() -> None:
    result = measure(CHECKS["triage_cost"], "postgresql://nobody@127.0.0.1:1/nowhere")

    assert result.passed is None
    assert result.error is not None
    assert result.error.startswith("OperationalError")


def test_a_batch_keeps_every_result_around_the_queries_that_fail(warehouse: DbtProject) -> None:
    """On PostgreSQL a batch is pipelined, and a failure aborts the rest of its pipeline:
    those are sent again, so each check still gets its own result, in order."""
    base = CHECKS["triage_cost"]
    broken, bad_cast = "select nope from nowhere", "select cast('x' as integer) as value"
    queries = ["select 1 as value", broken, "select 3 as value", bad_cast,
               "select null as value", "select 6 as value, 'x' as tag", broken, broken,
               "select 9 as value"]  # fmt: skip
    specs = [base.model_copy(update={"id": f"c{n}", "query": q}) for n, q in enumerate(queries)]

    with open_warehouse(warehouse.warehouse_url, read_only=True) as conn:
        results = measure_batch(conn, specs)

    assert [r.check_id for r in results] == [s.id for s in specs]
    assert [r.value for r in results] == [1, None, 3, None, None, 6, None, None, 9]
    assert results[5].context == {"tag": "x"}
    assert "nowhere" in (results[1].error or "")
    assert "x" in (results[3].error or "").split(":", 1)[1]
    assert results[4].error == "ValueError: the query returned no value (NULL)"
    assert all(r.error is None for r in (results[0], results[2], results[5], results[8]))
    assert all(r.duration_ms >= 0 for r in results)


def test_a_failure_after_repeated_queries_does_not_fail_the_later_ones(
    warehouse: DbtProject,
) -> None:
    """Checks that share their SQL (a template per agent, say) repeat one query text: psycopg
    would prepare it after 5 uses, and a PREPARE that a failure aborts inside the pipeline
    leaves it believing the statement exists, failing every later use on that connection."""
    base = CHECKS["triage_cost"]
    queries = ["select 1 as value"] * 5 + ["select nope from nowhere"] + ["select 1 as value"] * 6
    specs = [base.model_copy(update={"id": f"c{n}", "query": q}) for n, q in enumerate(queries)]

    with open_warehouse(warehouse.warehouse_url, read_only=True) as conn:
        sweeps = [measure_batch(conn, specs) for _ in range(2)]

    for results in sweeps:
        assert [r.error is not None for r in results] == [n == 5 for n in range(len(specs))]
        assert [r.value for r in results if r.error is None] == [1] * 11
