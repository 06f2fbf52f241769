"""The worker's warm dbt process ends with the worker, even one killed with SIGKILL (no signal
reaches a child then): an orphan held 185 MB and the warehouse."""

import os
import signal
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
