"""The Prefect settings Intervene sets wherever its flows run (the `intervene worker` process,
the work pool's job variables): flow-run heartbeats, which Prefect's zombie automation
(`intervene prefect setup`) watches to mark a run whose process died `Crashed`.

Prefect emits a `prefect.flow-run.heartbeat` event at a run's start and then every
PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds; it refuses a value under 30.
"""

import os

FLOW_HEARTBEAT_SECONDS = 30


def flow_run_env() -> dict[str, str]:
    return {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(FLOW_HEARTBEAT_SECONDS)}


def set_flow_run_env() -> None:
    """Before Prefect is imported (it reads its settings once); an operator's value wins."""
    for name, value in flow_run_env().items():
        os.environ.setdefault(name, value)
