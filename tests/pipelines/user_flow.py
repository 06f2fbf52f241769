"""A platform's own pipeline, as a user would deploy it beside Intervene on the same Prefect
server: `python -m tests.pipelines.user_flow` serves it as `user_pipeline/nightly`,
`user_pipeline/hourly` and `user_pipeline/weekly`. It fails
until its `marker` file says `ok`."""

from pathlib import Path

from prefect import flow, serve


@flow(name="user_pipeline")
def user_pipeline(marker: str, day: str) -> str:
    state = Path(marker).read_text().strip()
    if state != "ok":
        raise RuntimeError(f"the source for {day} is not ready ({state})")
    return f"loaded {day}"


if __name__ == "__main__":
    serve(
        user_pipeline.to_deployment(name="nightly", tags=["etl"]),
        user_pipeline.to_deployment(name="hourly", tags=["etl"]),
        user_pipeline.to_deployment(name="weekly", tags=["etl"]),
    )
