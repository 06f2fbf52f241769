"""`intervene tokens create|list|revoke`. Creating and revoking are in the audit log like the
API's requests: by `cli:<OS user>`, from `local`, method `CLI`, the command as the path."""

import asyncio
import getpass
from datetime import datetime
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from models import migrate
from models.db import connect, transaction
from models.enums import Role
from models.errors import NotFound
from models.services.audit import record_entry
from models.services.tokens import create_token, list_tokens, revoke_token
from models.settings import get_settings

app = typer.Typer(help="API tokens (stored hashed; a token is shown once).", no_args_is_help=True)


def operator() -> str:
    """Who runs the command: the local OS user (the CLI needs no token, only the database)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name: a container's bare uid
        return "cli:unknown"


async def _audit(session: AsyncSession, command: str, status: int) -> None:
    await record_entry(
        session,
        principal=operator(),
        role=None,
        client="local",
        method="CLI",
        path=f"intervene tokens {command}",
        status=status,
    )


async def _create(url: str, name: str, role: Role) -> str:
    database = connect(url)
    try:
        async with transaction(database.writer) as session:  # the token and its entry, or neither
            new = await create_token(session, name=name, role=role, created_by=operator())
            await _audit(session, f"create --name {name} --role {role.value}", 201)
            return new.secret
    finally:
        await database.dispose()


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="The person or service it is for.", min=1)],
    role: Annotated[Role, typer.Option(help="What it may do.")],
) -> None:
    """Create a token; the last line printed is the token alone (it is not shown again)."""
    url = get_settings().database_url
    migrate.upgrade(url)
    secret = asyncio.run(_create(url, name, role))
    typer.echo(f"token for {name} ({role}); store it now, it is not shown again:")
    typer.echo(secret)


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else "-"


@app.command("list")
def list_() -> None:
    """Every token: id, name, role, prefix, created, last used, revoked."""

    async def rows() -> list[str]:
        database = connect(get_settings().database_url)
        try:
            async with transaction(database.reader) as session:
                return [
                    "\t".join(
                        [
                            str(t.id),
                            t.name,
                            t.role,
                            f"{t.prefix}...",
                            _when(t.created_at),
                            _when(t.last_used_at),
                            f"revoked {_when(t.revoked_at)}" if t.revoked_at else "active",
                        ]
                    )
                    for t in await list_tokens(session)
                ]
        finally:
            await database.dispose()

    typer.echo("id\tname\trole\tprefix\tcreated\tlast used (to 5 min)\tstate")
    for row in asyncio.run(rows()):
        typer.echo(row)


@app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(help="The token's id (see list).")]) -> None:
    """Revoke a token: each running API process refuses it (401) within its token cache's
    INTERVENE_AUTH_CACHE_SECONDS (10 by default); this command cannot empty their caches."""
    settings = get_settings()

    async def run() -> str:
        database = connect(settings.database_url)
        command = f"revoke {token_id}"
        try:
            async with transaction(database.writer) as session:
                name = (await revoke_token(session, token_id)).name
                await _audit(session, command, 200)
                return name
        except NotFound:
            async with transaction(database.writer) as session:
                await _audit(session, command, 404)
            raise
        finally:
            await database.dispose()

    try:
        name = asyncio.run(run())
    except NotFound as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"revoked token {token_id} ({name}); the API refuses it within"
        f" {settings.auth_cache_seconds:g} seconds (the API's token cache)"
    )
