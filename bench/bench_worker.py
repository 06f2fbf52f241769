"""The Intervene worker plus the empty benchmark flow, served by one runner (the same worker)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "1")

from noop_flow import bench_noop
from prefect import serve
from prefect.types.entrypoint import EntrypointType

from deployments.worker import action_deployments, start_warm_dbt
from models.settings import get_settings

if __name__ == "__main__":
    socket_path = get_settings().dbt_socket
    assert socket_path is not None
    start_warm_dbt(socket_path)
    noop = bench_noop.to_deployment(name="bench", entrypoint_type=EntrypointType.FILE_PATH)
    serve(*action_deployments(), noop, pause_on_shutdown=False)
