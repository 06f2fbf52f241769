"""`intervene oncall`: who is on call now and next, from the on-call file and the overrides in
the database (what GET /api/oncall answers, without a server)."""

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer

from api.schemas.oncall import OnCallRead, ShiftRead
from models.base import utcnow
from models.db import connect, transaction
from models.oncall import OnCallOverride
from models.services.oncall_overrides import in_force
from models.settings import get_settings


async def _overrides(url: str, at: datetime) -> list[OnCallOverride]:
    database = connect(url)
    try:
        async with transaction(database.reader) as session:
            return await in_force(session, at)
    finally:
        await database.dispose()


def _when(at: datetime, zone: str) -> str:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(zone)).strftime("%a %Y-%m-%d %H:%M %Z")


def _who(shift: ShiftRead) -> str:
    override = f" (override {shift.override_id})" if shift.override_id is not None else ""
    return f"{shift.person.name} <{shift.person.email}>{override}"


def oncall(
    at: Annotated[
        str | None,
        typer.Option(help="The instant to ask about, ISO 8601 (default: now; no offset: UTC)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="GET /api/oncall's answer.")] = False,
) -> None:
    """Who is on call now and next for each schedule (INTERVENE_ONCALL_FILE)."""
    from checks.config import ConfigError
    from oncall.schedules import load_oncall

    settings = get_settings()
    try:
        people = load_oncall(settings.oncall_file)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    try:
        instant = utcnow() if at is None else datetime.fromisoformat(at)
    except ValueError:
        typer.echo(
            f"--at {at!r}: not an ISO 8601 instant, e.g. 2026-12-07T09:00:00+01:00", err=True
        )
        raise typer.Exit(2) from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    try:
        overrides = asyncio.run(_overrides(settings.database_url, instant))
    except Exception as exc:  # the database is not there yet (a new install): the rotation alone
        typer.echo(f"overrides not applied (database: {type(exc).__name__})", err=True)
        overrides = []
    answer = OnCallRead.of(people, instant, overrides)
    if as_json:
        typer.echo(answer.model_dump_json(indent=2))
        return
    if not answer.schedules:
        typer.echo("No schedules: no one is on call (INTERVENE_ONCALL_FILE).")
        return
    for schedule in answer.schedules:
        zone = schedule.time_zone
        typer.echo(f"{schedule.name} ({zone})")
        typer.echo(f"  now   {_who(schedule.now)}  until {_when(schedule.now.ends_at, zone)}")
        typer.echo(f"  next  {_who(schedule.next)}  from {_when(schedule.next.starts_at, zone)}")
