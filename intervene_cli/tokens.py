"""`intervene tokens create|list|revoke`."""

import asyncio
from typing import Annotated

import typer

from models import migrate
from models.db import connect, transaction
from models.enums import Role
from models.errors import NotFound
from models.services.tokens import create_token, list_tokens, revoke_token
from models.settings import get_settings

app = typer.Typer(help="API tokens (stored hashed; a token is shown once).", no_args_is_help=True)


async def _create(url: str, name: str, role: Role, created_by: str) -> str:
    database = connect(url)
    try:
        async with transaction(database.writer) as session:
            return (await create_token(session, name=name, role=role, created_by=created_by)).secret
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
    secret = asyncio.run(_create(url, name, role, created_by="cli"))
    typer.echo(f"token for {name} ({role}); store it now, it is not shown again:")
    typer.echo(secret)


@app.command("list")
def list_() -> None:
    """Every token: id, name, role, prefix, created, last used, revoked."""

    async def rows() -> list[str]:
        database = connect(get_settings().database_url)
        try:
            async with transaction(database.reader) as session:
                return [
                    "\t".join([str(t.id), t.name, t.role, f"{t.prefix}...",
                               f"{t.created_at:%Y-%m-%d %H:%M}", str(t.last_used_at or "-"),
                               f"revoked {t.revoked_at}" if t.revoked_at else "active"])
                    for t in await list_tokens(session)
                ]  # fmt: skip
        finally:
            await database.dispose()

    typer.echo("id\tname\trole\tprefix\tcreated\tlast used\tstate")
    for row in asyncio.run(rows()):
        typer.echo(row)


@app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(help="The token's id (see list).")]) -> None:
    """Revoke a token: requests with it are refused (401) from now on."""

    async def run() -> str:
        database = connect(get_settings().database_url)
        try:
            async with transaction(database.writer) as session:
                return (await revoke_token(session, token_id)).name
        finally:
            await database.dispose()

    try:
        name = asyncio.run(run())
    except NotFound as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked token {token_id} ({name})")
