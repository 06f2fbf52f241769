"""`intervene`: run the API, migrate the database, or run everything for a first look."""

import asyncio
import logging
from typing import Annotated

import typer
import uvicorn

from models import migrate
from models.db import sync_url
from models.settings import get_settings

app = typer.Typer(
    help="Intervene: incidents and remediation playbooks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)]


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def _serve(host: str, port: int, workers: int = 1) -> None:
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
    )


@app.command()
def api(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.", min=1)] = 1,
) -> None:
    """Run the HTTP API (migrates the database first unless INTERVENE_AUTO_MIGRATE=false)."""
    _configure_logging()
    _serve(host, port, workers)


@app.command()
def dev(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """A first look: migrate, add demo incidents to an empty database, run the API."""
    from models.demo import seed_demo

    _configure_logging()
    url = get_settings().database_url
    migrate.upgrade(url)
    added = asyncio.run(seed_demo(url))
    base = f"http://{host}:{port}"
    typer.echo(
        f"\nIntervene is starting on {base}\n"
        f"  database   {sync_url(url).render_as_string(hide_password=True)}"
        f"{f' ({added} demo incidents added)' if added else ''}\n"
        f"  API docs   {base}/docs\n"
        f"  try        curl {base}/api/incidents\n"
        "Stop with Ctrl-C.\n"
    )
    _serve(host, port)


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
