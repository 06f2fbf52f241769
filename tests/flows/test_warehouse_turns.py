"""Checks and dbt take turns on a DuckDB warehouse (one writing process at a time), and a
warehouse held by a process that does not take turns is retried, visibly, until it is free."""

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from flows.rerun_dbt import _invoke_dbt, run_models
from integrations.demo_warehouse import prepare_warehouse
from integrations.warehouse import DbtProject
from models.settings import Settings
from playbooks.actions.rerun_dbt import Params

# dbt keeps its log file open for the life of the process; not ours to close.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

PARAMS = Params(task_id="turns", models=["inbox_emails"])

# A check's read, as the worker's check process makes it: through open_warehouse.
READER = """
import sys, time
from integrations.warehouse import open_warehouse
with open_warehouse(sys.argv[1], read_only=True) as conn:
    conn.execute("select count(*) from inbox_emails").fetchone()
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""
# Someone's own tool on the file, which knows nothing of Intervene's turns.
STRANGER = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
conn.close()
"""


@pytest.fixture(scope="module")
def duckdb_project(tmp_path_factory: pytest.TempPathFactory) -> DbtProject:
    base = tmp_path_factory.mktemp("turns")
    project = DbtProject(
        Settings().dbt_project_dir,
        base / "target",
        f"duckdb:///{base / 'warehouse.duckdb'}",
    )
    prepare_warehouse(project, build=True)
    return project


def hold(script: str, target: str, seconds: float) -> subprocess.Popen[str]:
    """Another process holding the warehouse for `seconds`, from the moment this returns."""
    process = subprocess.Popen(
        [sys.executable, "-c", script, target, str(seconds)], stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "holding"
    return process


def test_dbt_waits_for_a_check_that_is_reading(duckdb_project: DbtProject) -> None:
    """Before: dbt failed at once with DuckDB's `Could not set lock on file`."""
    reader = hold(READER, duckdb_project.warehouse_url, 4)
    try:
        result = _invoke_dbt(PARAMS, ["inbox_emails"], duckdb_project)
    finally:
        reader.wait(30)

    assert reader.returncode == 0
    assert result["success"] is True, result
    assert result["models_run"] == ["inbox_emails"]


def test_a_check_waits_for_dbt(duckdb_project: DbtProject) -> None:
    from integrations.warehouse import warehouse_lock

    with warehouse_lock(duckdb_project.warehouse_url, wait=5):  # as dbt holds it
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, duckdb_project.warehouse_url, "0"],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
        )  # fmt: skip
        with pytest.raises(subprocess.TimeoutExpired):
            reader.wait(1)  # still waiting for its turn
    assert reader.wait(30) == 0


async def test_a_warehouse_held_by_a_stranger_is_retried_with_backoff_in_the_log(
    duckdb_project: DbtProject, caplog: pytest.LogCaptureFixture
) -> None:
    path = duckdb_project.warehouse_url.removeprefix("duckdb:///")
    stranger = hold(STRANGER, path, 2)
    try:
        with caplog.at_level(logging.WARNING, logger="intervene.flows"):
            result = await run_models.fn(PARAMS, ["inbox_emails"], duckdb_project)
    finally:
        stranger.wait(30)

    assert result["success"] is True, result
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert retries, caplog.text
    assert retries[0].startswith("dbt run failed (attempt 1 of 4): WarehouseBusy: dbt could not")


def test_parsing_the_project_never_waits_for_the_warehouse(duckdb_project: DbtProject) -> None:
    """A worker that starts while the old one's last dbt run holds the warehouse parses at once
    (its warm dbt must be ready within its start-up limit)."""
    from integrations.warehouse import invoke_dbt, warehouse_lock

    with warehouse_lock(duckdb_project.warehouse_url, wait=5):
        outcome = invoke_dbt(duckdb_project, "parse", wait=1)
    assert outcome.success
