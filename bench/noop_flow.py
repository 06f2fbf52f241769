"""An empty flow: the floor of the trigger path (run_deployment -> worker -> flow running)."""

from prefect import flow


@flow(name="bench_noop")
def bench_noop() -> None:
    return None
