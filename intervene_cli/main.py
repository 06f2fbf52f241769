"""`intervene`: run the API, migrate the database, or run everything for a first look."""

import asyncio
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from intervene_cli import docs, ingest, oncall, tokens
from models import migrate
from models.settings import get_settings

app = typer.Typer(
    help="Intervene: incidents and remediation playbooks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
warehouse_app = typer.Typer(help="The dbt project and its warehouse.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(warehouse_app, name="warehouse")
checks_app = typer.Typer(help="The declared checks.", no_args_is_help=True)
app.add_typer(checks_app, name="checks")
app.add_typer(tokens.app, name="tokens")
app.add_typer(docs.app, name="docs")
app.add_typer(ingest.app, name="ingest")
prefect_app = typer.Typer(help="Intervene's objects on the Prefect server.", no_args_is_help=True)
app.add_typer(prefect_app, name="prefect")
app.command("oncall")(oncall.oncall)

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)]


def _configure_logging() -> dict[str, Any]:
    """JSON lines, or text with INTERVENE_LOG_FORMAT=text (api/logs.py); the configuration is
    returned for uvicorn, which applies it again in each of its worker processes."""
    from api.logs import configure_logging

    return configure_logging(get_settings().log_format)


def _validate_checks() -> None:
    """Stop with the checks file's problems, each with its line, before anything starts."""
    from checks.config import ConfigError
    from playbooks.catalog import load_checks

    try:
        load_checks(get_settings().checks_file)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _serve(host: str, port: int, log_config: dict[str, Any], workers: int = 1) -> None:
    from api.server import uvicorn_options

    uvicorn.run(**uvicorn_options(host, port, log_config, workers))


@app.command()
def api(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.", min=1)] = 1,
    seed_demo: Annotated[
        bool, typer.Option(help="Add demo incidents to an empty database.")
    ] = False,
) -> None:
    """Run the HTTP API (migrates the database first unless INTERVENE_AUTO_MIGRATE=false)."""
    log_config = _configure_logging()
    _validate_checks()
    if seed_demo:
        from models.services.demo import seed_demo as seed

        url = get_settings().database_url
        migrate.upgrade(url)
        added = asyncio.run(seed(url))
        if added:
            typer.echo(f"{added} demo incidents added")
    _serve(host, port, log_config, workers)


@app.command()
def dev(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Everything for a first look: Prefect server and UI, demo warehouse, worker, services, API."""
    from deployments.stack import run_stack

    _validate_checks()
    run_stack(host, port)


@app.command()
def worker() -> None:
    """Serve the action and check flows as Prefect deployments (not beside a work pool)."""
    from deployments.prefect_env import set_flow_run_env

    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "1")  # before Prefect reads it
    set_flow_run_env()
    from deployments.worker import run_worker

    _configure_logging()
    _validate_checks()
    run_worker()


@app.command("dbt-executor")
def dbt_executor() -> None:
    """Keep dbt warm for the flows of this host (beside a process pool's worker): they send their
    dbt runs to it over INTERVENE_DBT_SOCKET instead of importing dbt in every flow process."""
    from deployments.worker import start_warm_dbt

    socket_path = get_settings().dbt_socket
    if socket_path is None:
        raise typer.BadParameter("set INTERVENE_DBT_SOCKET to the socket the flows will use")
    _configure_logging()
    raise typer.Exit(start_warm_dbt(socket_path).wait())


@app.command()
def services() -> None:
    """Run the reconciler and webhook delivery; registers or changes no deployment."""
    from deployments.services import run_services

    _configure_logging()
    run_services(get_settings())


@prefect_app.command("setup")
def prefect_setup(
    zombie_threshold: Annotated[
        int, typer.Option(help="Seconds without a heartbeat before a run is Crashed.", min=31)
    ] = 90,
    all_runs: Annotated[
        bool, typer.Option(help="Crash every zombie run on the server, not only Intervene's.")
    ] = False,
    pool: Annotated[str, typer.Option(help="The work pool to create or update.")] = "intervene",
    intervene_url: Annotated[
        str | None,
        typer.Option(help="Intervene's base URL: also call it when a flow run crashes or fails."),
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option(help="A file holding the token for --intervene-url.")
    ] = None,
) -> None:
    """Create or update the work pool and the automations; running it again changes nothing."""
    from deployments.prefect_setup import SetupError, setup

    if (intervene_url is None) != (token_file is None):
        typer.echo("--intervene-url and --token-file go together", err=True)
        raise typer.Exit(2)
    token = token_file.read_text().strip() if token_file is not None else None
    try:
        changes = asyncio.run(
            setup(
                pool=pool,
                zombie_threshold=zombie_threshold,
                all_runs=all_runs,
                intervene_url=intervene_url,
                token=token,
            )
        )
    except SetupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    for line in changes:
        typer.echo(line)


@warehouse_app.command("prepare")
def warehouse_prepare(
    build: Annotated[bool, typer.Option(help="Also seed and build the models.")] = True,
) -> None:
    """Parse the dbt project (the manifest the API reads) and build the demo warehouse."""
    from integrations.demo_warehouse import prepare_warehouse
    from integrations.warehouse import DbtProject

    settings = get_settings()
    prepare_warehouse(DbtProject.from_settings(settings), build=build)
    typer.echo(f"warehouse ready: {settings.warehouse_url}")


@warehouse_app.command("feed")
def warehouse_feed(
    every: Annotated[float, typer.Option(help="Seconds between new emails.", min=1)] = 20,
) -> None:
    """Keep the demo's raw emails arriving (the inbox goes stale until dbt runs again)."""
    import time

    from integrations.demo_warehouse import add_email

    _configure_logging()
    url = get_settings().warehouse_url
    while True:
        try:
            email_id = add_email(url)
            logging.getLogger("intervene.feed").info("email %s arrived", email_id)
        except Exception:  # the warehouse may be busy or down; try again next time
            logging.getLogger("intervene.feed").exception("could not add an email")
        time.sleep(every)


@checks_app.command("validate")
def checks_validate() -> None:
    """Load the checks file and report every problem with its line (exit 2 if any)."""
    _validate_checks()
    typer.echo(f"{get_settings().checks_file}: valid")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    url = get_settings().database_url
    migrate.upgrade(url, revision)
    typer.echo(f"database at revision {migrate.current_revision(url)}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target, e.g. -1 or base.")]) -> None:
    """Revert migrations down to REVISION."""
    url = get_settings().database_url
    migrate.downgrade(url, revision)
    typer.echo(f"database at revision {migrate.current_revision(url)}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision."""
    typer.echo(migrate.current_revision(get_settings().database_url) or "(empty)")
