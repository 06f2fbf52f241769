"""rerun_dbt's plan (pure) and its dbt step (real dbt, on DuckDB and on PostgreSQL)."""

import subprocess
import sys
from pathlib import Path

import pytest

from flows.rerun_dbt import _invoke_dbt
from integrations.warehouse import DbtProject, Manifest, dbt_environment
from models.errors import ParamsError
from models.settings import Settings
from playbooks.actions.rerun_dbt import Params, command_line, plan

# dbt keeps its log file open for the life of the process; not ours to close.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

MANIFEST = Manifest(
    parents={"raw_orders": (), "orders": ("raw_orders",), "revenue": ("orders",)},
    materialized={"raw_orders": "table", "orders": "incremental", "revenue": "table"},
)


def params(**overrides: object) -> Params:
    return Params.model_validate({"task_id": "t-1", "models": ["orders"]} | overrides)


def test_plan_of_one_model() -> None:
    result = plan(params(), MANIFEST)

    assert result.message == "Command: dbt run --select orders --threads 4"
    assert result.details["models"] == ["orders"]
    assert result.changes == [
        "Will re-run 1 dbt model",
        "Model: orders",
        "No full refresh (incremental only)",
    ]
    assert result.requires_approval is False
    assert result.rollback_available is False
    assert result.estimated_duration > 0
    assert result.estimated_cost == round(result.estimated_duration * 0.05 / 300, 4)


def test_upstream_adds_ancestors_in_build_order() -> None:
    result = plan(params(models=["revenue"], upstream=True), MANIFEST)

    assert result.details["models"] == ["raw_orders", "orders", "revenue"]
    assert command_line(params(models=["revenue"], upstream=True)).startswith(
        "dbt run --select +revenue"
    )


def test_full_refresh_needs_approval_and_costs_more() -> None:
    plain = plan(params(), MANIFEST)
    full = plan(params(full_refresh=True), MANIFEST)

    assert full.requires_approval is True
    assert full.estimated_duration > plain.estimated_duration
    assert "Full refresh: incremental models rebuilt from scratch (orders)" in full.changes


def test_unknown_models_are_a_params_error() -> None:
    with pytest.raises(ParamsError) as raised:
        plan(params(models=["orders", "ghost"]), MANIFEST)

    assert raised.value.field == "params.models"
    assert "ghost" in raised.value.message


def test_the_shipped_project_has_an_incremental_inbox(dbt_dirs: dict[str, Path]) -> None:
    project = DbtProject(Settings().dbt_project_dir, dbt_dirs["target"], "duckdb:///unused")

    manifest = project.manifest()

    assert {"inbox_emails", "triage_results"} <= set(manifest.models)
    assert manifest.materialized["inbox_emails"] == "incremental"
    assert manifest.parents["triage_results"] == ("inbox_emails",)


def test_dbt_environment_from_warehouse_urls() -> None:
    assert dbt_environment("duckdb:///data/wh.duckdb") == {
        "INTERVENE_DBT_TARGET": "duckdb",
        "INTERVENE_DBT_DUCKDB_PATH": "data/wh.duckdb",
    }
    pg = dbt_environment("postgresql://dbt:s3cret@db.internal:6432/analytics?schema=marts")
    assert pg["INTERVENE_DBT_TARGET"] == "postgres"
    assert (pg["INTERVENE_DBT_PG_HOST"], pg["INTERVENE_DBT_PG_PORT"]) == ("db.internal", "6432")
    assert (pg["INTERVENE_DBT_PG_USER"], pg["INTERVENE_DBT_PG_PASSWORD"]) == ("dbt", "s3cret")
    assert (pg["INTERVENE_DBT_PG_DBNAME"], pg["INTERVENE_DBT_PG_SCHEMA"]) == ("analytics", "marts")


def test_dbt_step_runs_the_selection_and_reports_each_model(warehouse: DbtProject) -> None:
    chosen = params(models=["triage_results"], upstream=True)

    result = _invoke_dbt(chosen, ["inbox_emails", "triage_results"], warehouse)

    assert result["success"] is True
    assert result["exit_code"] == 0
    assert result["message"] == "Successfully ran 2 model(s)"
    assert [m["name"] for m in result["models"]] == ["inbox_emails", "triage_results"]
    assert all(m["status"] == "success" and m["execution_time"] >= 0 for m in result["models"])
    if warehouse.warehouse_url.startswith("postgresql"):
        rows = {m["name"]: m["rows_affected"] for m in result["models"]}
        assert rows["triage_results"] == 200


def test_dbt_step_fails_when_an_expected_model_did_not_run(warehouse: DbtProject) -> None:
    result = _invoke_dbt(params(models=["inbox_emails"]), ["inbox_emails", "ghost"], warehouse)

    assert result["success"] is False
    assert result["exit_code"] == 1
    assert "ghost" in result["message"]


def test_the_api_process_never_imports_dbt() -> None:
    code = (
        "import sys, api.main, playbooks.service, flows.registry, flows.rerun_dbt;"
        "api.main.create_app();"
        "loaded = [m for m in sys.modules if m == 'dbt' or m.startswith('dbt.')];"
        "sys.exit(f'dbt imported: {loaded[:5]}' if loaded else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
