"""The worker's warm dbt process ends with the worker, even one killed with SIGKILL (no signal
reaches a child then): an orphan held 185 MB and the warehouse."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The worker, as far as the warm process is concerned: it starts it, says its pid, and waits.
WORKER = """
import sys, time
from pathlib import Path
from deployments.worker import start_warm_dbt
process = start_warm_dbt(Path(sys.argv[1]))
print(f"warm pid {process.pid}", flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Running (a zombie waiting for whoever adopted it to reap it has ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_the_warm_dbt_process_ends_when_its_worker_is_killed(
    tmp_path: Path, dbt_dirs: dict[str, Path]
) -> None:
    env = os.environ | {
        "INTERVENE_WAREHOUSE_URL": f"duckdb:///{dbt_dirs['warehouse']}",
        "INTERVENE_DBT_TARGET_DIR": str(tmp_path / "target"),
    }
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tmp_path / "warm.sock")], env=env,
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert worker.stdout is not None
    lines = iter(worker.stdout.readline, "")  # dbt's own lines come first, on the same pipe
    warm = int(next(line for line in lines if line.startswith("warm pid ")).split()[-1])
    assert alive(warm)

    worker.send_signal(signal.SIGKILL)
    worker.wait()
    worker.stdout.close()

    deadline = time.monotonic() + 30
    while alive(warm):
        assert time.monotonic() < deadline, f"warm dbt {warm} outlived its worker"
        time.sleep(0.2)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_intervene_dbt_executor_serves_the_hosts_flows_and_stops_with_sigterm(
    tmp_path: Path, dbt_dirs: dict[str, Path]
) -> None:
    """`intervene dbt-executor` beside a process pool's worker: a flow's dbt run goes to it."""
    from flows import warm_dbt
    from integrations.warehouse import DbtProject
    from models.settings import Settings

    socket_path = tmp_path / "warm.sock"
    env = os.environ | {
        "INTERVENE_WAREHOUSE_URL": f"duckdb:///{dbt_dirs['warehouse']}",
        "INTERVENE_DBT_TARGET_DIR": str(tmp_path / "target"),
        "INTERVENE_DBT_SOCKET": str(socket_path),
    }
    executor = subprocess.Popen(
        [sys.executable, "-m", "intervene_cli", "dbt-executor"], env=env,
        cwd=Path(__file__).parents[2], stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not socket_path.exists():
            assert executor.poll() is None, f"dbt-executor exited with {executor.returncode}"
            assert time.monotonic() < deadline, "dbt-executor made no socket in 120 s"
            time.sleep(0.2)
        project = DbtProject(
            project_dir=Settings().dbt_project_dir.resolve(),
            target_dir=(tmp_path / "target").resolve(),
            warehouse_url=f"duckdb:///{dbt_dirs['warehouse']}",
        )
        outcome = warm_dbt._ask(
            socket_path,
            {"args": ["run", "--select", "triage_results"], "warehouse_url":
             project.warehouse_url, "target_dir": str(project.target_dir)},
        )  # fmt: skip
        assert outcome["success"] is True, outcome
        assert [r["name"] for r in outcome["results"]] == ["triage_results"]
    finally:
        executor.send_signal(signal.SIGTERM)
        executor.wait(timeout=30)

    deadline = time.monotonic() + 30  # the warm process it started ends with it
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(socket_path))
        except (ConnectionRefusedError, FileNotFoundError):
            break
        assert time.monotonic() < deadline, "the warm dbt process outlived dbt-executor"
        time.sleep(0.2)
