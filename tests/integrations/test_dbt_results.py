"""dbt's artifacts as alerts: the real run_results.json, sources.json and manifest.json of the
shipped project (built once per module with dbt on DuckDB, broken on purpose), and small
hand-made documents for what dbt would never write."""

import json
import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from integrations.dbt_results import (
    RERUN_DBT,
    ArtifactError,
    ArtifactKind,
    Parsed,
    parse_artifact,
    read_artifact,
)
from integrations.demo_warehouse import add_email, load_demo_data
from integrations.warehouse import DbtProject, Manifest, invoke_dbt, load_manifest, open_warehouse
from models.alert import KEY_MAX, SUMMARY_MAX, Alert, Refusal, Signal, Source, label_problem
from models.enums import Severity
from models.settings import Settings
from playbooks.actions.rerun_dbt import Params

# dbt keeps its log file open for the life of the process; not ours to close.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

PROJECT = "intervene_demo"
INBOX = f"model.{PROJECT}.inbox_emails"
TRIAGE = f"model.{PROJECT}.triage_results"
BROKEN = f"model.{PROJECT}.broken_model"
RAW_EMAILS = f"source.{PROJECT}.demo.raw_emails"
NOT_NULL = f"test.{PROJECT}.not_null_inbox_emails_email_id"  # + `.<hash>`
UNIQUE = f"test.{PROJECT}.unique_inbox_emails_email_id"
OUTAGES = f"test.{PROJECT}.inbox_has_no_outage_mail"  # a singular test, severity warn
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Artifacts:
    build: Path  # run_results.json of `dbt build`
    test: Path  # run_results.json of `dbt test --select inbox_emails`
    stale: Path  # sources.json of `dbt source freshness`, raw_emails 3 h old
    fresh: Path  # the same after an email arrived
    manifest_path: Path
    manifest: Manifest
    seconds: float  # how long making them took


@pytest.fixture(scope="module")
def dbt_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    """The shipped project, copied and given a model that cannot build and a test that warns,
    on demo data loaded three hours ago plus an email without an id: `dbt build`, `dbt test`,
    `dbt source freshness` (stale), an email arrives, `dbt source freshness` (fresh)."""
    started = time.monotonic()
    base = tmp_path_factory.mktemp("dbt_artifacts")
    project_dir = base / "project"
    shutil.copytree(Settings().dbt_project_dir, project_dir)
    (project_dir / "models" / "broken_model.sql").write_text("select * from no_such_table\n")
    (project_dir / "tests").mkdir()
    (project_dir / "tests" / "inbox_has_no_outage_mail.sql").write_text(
        "{{ config(severity='warn') }}\n"
        "select * from {{ ref('inbox_emails') }} where subject ilike '%outage%'\n"
    )
    project = DbtProject(project_dir, base / "target", f"duckdb:///{base / 'warehouse.duckdb'}")
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)
    load_demo_data(project.warehouse_url, now=three_hours_ago)
    with open_warehouse(project.warehouse_url, read_only=False) as connection:
        connection.execute(
            "INSERT INTO raw_emails VALUES (NULL, 'x@example.com', 'no id', ?)",
            [three_hours_ago - timedelta(minutes=5)],
        )
    out = base / "artifacts"
    out.mkdir()

    def run(name: str, *args: str, produces: str) -> Path:
        invoke_dbt(project, *args)  # fails on purpose: the artifact says how
        return Path(shutil.copy(project.target_dir / produces, out / name))

    build = run("build.json", "build", produces="run_results.json")
    test = run("test.json", "test", "--select", "inbox_emails", produces="run_results.json")
    stale = run("stale.json", "source", "freshness", produces="sources.json")
    add_email(project.warehouse_url)
    fresh = run("fresh.json", "source", "freshness", produces="sources.json")
    manifest = load_manifest(project.manifest_path)
    seconds = time.monotonic() - started
    return Artifacts(build, test, stale, fresh, project.manifest_path, manifest, seconds)


def by_id(parsed: Parsed) -> dict[str, Alert]:
    """Alerts by unique id, a generic test's hash cut off."""
    return {re.sub(r"\.[0-9a-f]{10}$", "", a.details["unique_id"]): a for a in parsed.alerts}


def test_artifacts_are_made_in_reasonable_time(dbt_artifacts: Artifacts) -> None:
    assert dbt_artifacts.seconds < 60


def test_dbt_build_fires_the_failures_and_resolves_the_passes(dbt_artifacts: Artifacts) -> None:
    parsed = read_artifact(dbt_artifacts.build, manifest=dbt_artifacts.manifest)
    alerts = by_id(parsed)

    assert parsed.kind is ArtifactKind.RUN_RESULTS
    assert parsed.refused == []
    assert set(alerts) == {INBOX, BROKEN, NOT_NULL, UNIQUE, OUTAGES}
    # triage_results and its two tests are skipped: the not_null test on its parent failed
    assert parsed.ignored == 3
    failed = alerts[NOT_NULL]
    assert failed.source is Source.DBT
    assert (failed.signal, failed.severity, failed.kind) == (Signal.FIRING, None, None)
    assert failed.summary == "dbt test not_null_inbox_emails_email_id failed: 1 failure"
    assert failed.key == failed.details["unique_id"]
    assert failed.nodes == (INBOX,)
    assert failed.playbooks == (RERUN_DBT,)
    assert failed.params == {RERUN_DBT: {"models": ["inbox_emails"]}}
    assert failed.details["failures"] == 1
    assert failed.details["status"] == "fail"
    assert alerts[UNIQUE].signal is Signal.RESOLVED
    assert alerts[UNIQUE].summary == "dbt test unique_inbox_emails_email_id passed"
    warned = alerts[OUTAGES]
    assert (warned.signal, warned.severity) == (Signal.FIRING, Severity.SEV4)
    assert re.fullmatch(r"dbt test inbox_has_no_outage_mail warned: \d+ failures?", warned.summary)
    assert alerts[INBOX].signal is Signal.RESOLVED
    assert alerts[INBOX].summary == "dbt model inbox_emails built"
    broken = alerts[BROKEN]
    assert broken.signal is Signal.FIRING
    assert broken.summary.startswith("dbt model broken_model failed: Catalog Error: Table")
    assert "no_such_table" in broken.summary
    assert broken.nodes == (BROKEN,)
    assert broken.params == {RERUN_DBT: {"models": ["broken_model"]}}


def test_metadata_and_timing_reach_every_alert(dbt_artifacts: Artifacts) -> None:
    document = json.loads(dbt_artifacts.build.read_text())
    metadata = document["metadata"]

    parsed = parse_artifact(document, manifest=dbt_artifacts.manifest, received_at=NOW)

    generated = datetime.fromisoformat(metadata["generated_at"])
    for alert in parsed.alerts:
        assert alert.at == generated
        assert alert.details["invocation_id"] == metadata["invocation_id"]
        assert alert.details["dbt_version"] == metadata["dbt_version"]
        assert alert.details["generated_at"] == metadata["generated_at"]
        assert isinstance(alert.details["execution_time"], float)
        assert label_problem(alert.labels) is None
    assert by_id(parsed)[NOT_NULL].labels == {
        "dbt_resource_type": "test",
        "dbt_name": "not_null_inbox_emails_email_id",
        "dbt_project": PROJECT,
    }


def test_the_preset_params_are_what_rerun_dbt_accepts(dbt_artifacts: Artifacts) -> None:
    parsed = read_artifact(dbt_artifacts.build, manifest=dbt_artifacts.manifest)

    for alert in parsed.alerts:
        for playbook in alert.playbooks:
            Params.model_validate({"task_id": "t-1", **alert.params[playbook]})


def test_without_the_manifest_a_test_names_no_model(dbt_artifacts: Artifacts) -> None:
    alerts = by_id(read_artifact(dbt_artifacts.build, manifest=None))

    assert alerts[NOT_NULL].summary == "dbt test not_null_inbox_emails_email_id failed: 1 failure"
    assert (alerts[NOT_NULL].nodes, alerts[NOT_NULL].playbooks, alerts[NOT_NULL].params) == (
        (),
        (),
        {},
    )
    assert alerts[BROKEN].nodes == (BROKEN,)  # a built node names itself, from its id
    assert alerts[BROKEN].params == {RERUN_DBT: {"models": ["broken_model"]}}


def test_dbt_test_alone(dbt_artifacts: Artifacts) -> None:
    alerts = by_id(read_artifact(dbt_artifacts.test, manifest=dbt_artifacts.manifest))

    assert {k: a.signal for k, a in alerts.items()} == {
        NOT_NULL: Signal.FIRING,
        UNIQUE: Signal.RESOLVED,
        OUTAGES: Signal.FIRING,
    }


def test_a_stale_source_fires_and_resolves_when_fresh(dbt_artifacts: Artifacts) -> None:
    stale = read_artifact(dbt_artifacts.stale, manifest=dbt_artifacts.manifest)
    fresh = read_artifact(dbt_artifacts.fresh, manifest=dbt_artifacts.manifest)

    assert (stale.kind, stale.refused, fresh.refused) == (ArtifactKind.SOURCES, [], [])
    [fired] = stale.alerts
    [resolved] = fresh.alerts
    assert fired.key == resolved.key == RAW_EMAILS
    assert (fired.signal, fired.severity) == (Signal.FIRING, None)
    assert re.fullmatch(
        r"source demo\.raw_emails is stale: last loaded 3 h( \d+ min)? ago \(error after 1 h\)",
        fired.summary,
    )
    assert fired.nodes == resolved.nodes == (RAW_EMAILS,)
    assert fired.playbooks == ()  # rebuilding models does not refill a source
    assert fired.details["criteria"]["error_after"] == {"count": 1, "period": "hour"}
    assert fired.details["max_loaded_at_time_ago_in_s"] > 3 * 3600
    assert resolved.signal is Signal.RESOLVED
    assert re.fullmatch(
        r"source demo\.raw_emails is fresh: last loaded \d+ s ago", resolved.summary
    )


def test_lineage_puts_the_failing_test_under_the_stale_source(dbt_artifacts: Artifacts) -> None:
    lineage = dbt_artifacts.manifest.lineage
    [source] = read_artifact(dbt_artifacts.stale, manifest=dbt_artifacts.manifest).alerts
    test = by_id(read_artifact(dbt_artifacts.build, manifest=dbt_artifacts.manifest))[NOT_NULL]

    assert lineage.is_downstream(test.nodes, source.nodes)
    assert not lineage.is_downstream(source.nodes, test.nodes)


def test_a_manifest_is_not_a_result_artifact(dbt_artifacts: Artifacts) -> None:
    with pytest.raises(ArtifactError, match=r"manifest/v12\.json is not a run_results\.json"):
        read_artifact(dbt_artifacts.manifest_path)


# hand-made documents


def document(kind: str = "run-results/v6", *results: Any, **metadata: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "dbt_schema_version": f"https://schemas.getdbt.com/dbt/{kind}.json",
            "dbt_version": "1.11.16",
            "generated_at": "2025-03-01T11:59:00.5Z",
            "invocation_id": "inv-1",
            **metadata,
        },
        "results": list(results),
    }


def result(unique_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {"unique_id": unique_id, "status": status, "execution_time": 0.1, **fields}


def freshness(status: str, age: float | None, **fields: Any) -> dict[str, Any]:
    criteria = {
        "warn_after": {"count": 30, "period": "minute"},
        "error_after": {"count": 2, "period": "day"},
        "filter": None,
    }
    return result(
        "source.shop.erp.orders",
        status,
        max_loaded_at_time_ago_in_s=age,
        criteria=criteria,
        **fields,
    )


def parse(doc: Any) -> Parsed:
    return parse_artifact(doc, manifest=None, received_at=NOW)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "metadata.dbt_schema_version is missing"),
        ({"metadata": {}}, "metadata.dbt_schema_version is missing"),
        (document("catalog/v1"), "catalog/v1.json is not a run_results.json"),
        (document("manifest/v12"), r"\(dbt source freshness\)"),
        (document("run-results/v7"), r"run-results v7 is not read here \(known: v4, v5, v6\)"),
        (document("sources/v2"), r"sources v2 is not read here \(known: v3\)"),
        ({**document(), "results": {}}, "`results` must be a list"),
        (document(generated_at="yesterday"), "metadata.generated_at: 'yesterday' is not an ISO"),
    ],
)
def test_documents_that_are_not_artifacts_we_read(doc: Any, message: str) -> None:
    with pytest.raises(ArtifactError, match=message):
        parse(doc)


def test_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "run_results.json"
    path.write_text("{not json")

    with pytest.raises(ArtifactError, match=r"run_results\.json: not a readable JSON file"):
        read_artifact(path)
    with pytest.raises(ArtifactError, match="not a readable JSON file"):
        read_artifact(tmp_path / "missing.json")


def test_results_that_cannot_be_read_are_refused_and_the_rest_taken() -> None:
    doc = document(
        "run-results/v6",
        "not an object",
        {"status": "pass"},
        result("test.shop.not_null_orders_id.0123456789", "exploded"),
        result("test.shop.unique_orders_id.0123456789", "fail", failures="three"),
        result("exposure.shop.dashboard", "success"),
        result("model.shop.orders", "pass"),
        result("test.shop.accepted_values_orders.0123456789", "fail", failures=2),
    )

    parsed = parse(doc)

    assert parsed.refused == [
        Refusal(0, "result", "each result must be an object"),
        Refusal(1, "unique_id", "unique_id must be a dbt unique id (`model.<project>.<name>`)"),
        Refusal(
            2,
            "status",
            "test.shop.not_null_orders_id.0123456789: unknown status 'exploded' for a test",
        ),
        Refusal(
            3, "failures", "test.shop.unique_orders_id.0123456789: failures must be a whole number"
        ),
        Refusal(
            4, "unique_id", "exposure.shop.dashboard: not a test, model, seed, snapshot or function"
        ),
        Refusal(5, "status", "model.shop.orders: unknown status 'pass' for a model"),
    ]
    [taken] = parsed.alerts
    assert taken.summary == "dbt test accepted_values_orders failed: 2 failures"
    assert taken.at == datetime(2025, 3, 1, 11, 59, 0, 500000, tzinfo=UTC)


def test_skips_no_ops_and_hooks_are_ignored() -> None:
    parsed = parse(
        document(
            "run-results/v5",
            result("model.shop.orders", "skipped"),
            result("model.shop.customers", "no-op"),
            result("operation.shop.shop-on-run-end-0", "success"),
        )
    )

    assert (parsed.alerts, parsed.refused, parsed.ignored) == ([], [], 3)


def test_errors_say_the_cause_not_dbts_preamble() -> None:
    message = (
        "Runtime Error in test not_null_orders_id (models/schema.yml)\n"
        "  Binder Error: Referenced column id not found\n  LINE 3: ..."
    )
    parsed = parse(
        document(
            "run-results/v6",
            result("test.shop.not_null_orders_id.0123456789", "error", message=message),
            result("snapshot.shop.orders_snapshot", "error", message="Compilation Error"),
            result("seed.shop.countries", "success"),
            result("unit_test.shop.orders.test_totals", "fail", failures=None),
        )
    )

    assert [a.summary for a in parsed.alerts] == [
        "dbt test not_null_orders_id errored: Binder Error: Referenced column id not found",
        "dbt snapshot orders_snapshot failed: Compilation Error",
        "dbt seed countries built",
        "dbt unit test test_totals failed",
    ]
    assert [a.details["message"] for a in parsed.alerts][:2] == [message, "Compilation Error"]
    assert parsed.alerts[1].playbooks == ()  # rerun_dbt runs models only
    assert parsed.alerts[2].signal is Signal.RESOLVED


@pytest.mark.parametrize(
    ("status", "age", "summary", "severity"),
    [
        ("pass", 45, "source erp.orders is fresh: last loaded 45 s ago", None),
        (
            "warn",
            720,
            "source erp.orders is stale: last loaded 12 min ago (warn after 30 min)",
            Severity.SEV4,
        ),
        (
            "warn",
            7500,
            "source erp.orders is stale: last loaded 2 h 5 min ago (warn after 30 min)",
            Severity.SEV4,
        ),
        (
            "error",
            3 * 86400 + 4 * 3600 + 5,
            "source erp.orders is stale: last loaded 3 d 4 h ago (error after 2 d)",
            None,
        ),
    ],
)
def test_freshness_summaries(
    status: str, age: float, summary: str, severity: Severity | None
) -> None:
    [alert] = parse(document("sources/v3", freshness(status, age))).alerts

    assert (alert.summary, alert.severity) == (summary, severity)
    assert alert.signal is (Signal.RESOLVED if status == "pass" else Signal.FIRING)
    assert alert.nodes == ("source.shop.erp.orders",)


def test_a_freshness_query_that_failed_fires() -> None:
    runtime_error = {
        "unique_id": "source.shop.erp.orders",
        "status": "runtime error",
        "error": "Database Error in source orders (models/sources.yml)\n  permission denied",
    }
    parsed = parse(
        document(
            "sources/v3",
            runtime_error,
            freshness("warn", None),
            result("model.shop.orders", "pass", max_loaded_at_time_ago_in_s=1),
        )
    )

    [alert] = parsed.alerts
    assert alert.signal is Signal.FIRING
    assert alert.summary == "freshness of source erp.orders could not be checked: permission denied"
    assert alert.nodes == ("source.shop.erp.orders",)
    assert parsed.refused == [
        Refusal(
            1, "max_loaded_at_time_ago_in_s", "source.shop.erp.orders: the age must be a number"
        ),
        Refusal(2, "unique_id", "model.shop.orders: not a source"),
    ]


def test_long_ids_and_messages_are_cut_to_size() -> None:
    long_id = "test.shop." + "x" * 300 + ".0123456789"
    [alert] = parse(
        document("run-results/v6", result(long_id, "error", message="boom " * 500))
    ).alerts

    assert len(alert.key) <= KEY_MAX
    assert alert.key != long_id
    assert len(alert.summary) == SUMMARY_MAX
    assert alert.summary.endswith("…")


def test_without_generated_at_the_time_received_is_used() -> None:
    doc = document("run-results/v6", result("model.shop.orders", "success"))
    del doc["metadata"]["generated_at"]

    [alert] = parse(doc).alerts

    assert alert.at == NOW


def test_what_the_database_cannot_store_is_refused() -> None:
    parsed = parse(
        document(
            "run-results/v6",
            result("model.shop.orders", "error", message="bad byte \x00 here"),
            result("model.shop.customers", "success", execution_time=float("nan")),
            result("model.shop.payments", "success"),
        )
    )

    assert parsed.refused == [
        Refusal(0, "result", "model.shop.orders: holds a NUL character"),
        Refusal(
            1, "result", "model.shop.customers: holds NaN or Infinity, which JSON cannot carry"
        ),
    ]
    assert [a.key for a in parsed.alerts] == ["model.shop.payments"]
