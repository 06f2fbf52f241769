"""The Intervene worker plus the empty benchmark flow, served by one runner (the same worker)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "1")

from noop_flow import bench_noop  # noqa: E402
from prefect import serve  # noqa: E402
from prefect.deployments.runner import EntrypointType  # noqa: E402

from deployments.worker import action_deployments, parse_project  # noqa: E402

if __name__ == "__main__":
    parse_project()
    noop = bench_noop.to_deployment(name="bench", entrypoint_type=EntrypointType.FILE_PATH)
    serve(*action_deployments(), noop, pause_on_shutdown=False)
