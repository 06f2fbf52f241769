"""`intervene ingest dbt RUN_RESULTS [--manifest MANIFEST]`: dbt's own artifacts straight into the
database, the way POST /api/integrations/dbt/run-results takes them (same rules, same lineage,
same incidents), for a CI job or a cron that runs dbt beside Intervene. In the audit log like
the API's requests: by `cli:<OS user>`."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from alerts import dbt
from alerts.intake import Intake
from alerts.rules import load_rules
from checks.config import ConfigError
from integrations.dbt_results import ArtifactError, read_artifact
from integrations.warehouse import Manifest, ManifestMissing
from intervene_cli.tokens import operator
from models import migrate
from models.db import connect, transaction
from models.services.audit import record_entry
from models.services.incidents import IncidentCap
from playbooks.catalog import SUGGESTABLE

app = typer.Typer(help="Alerts from files other tools wrote.", no_args_is_help=True)


async def _ingest(path: Path, manifest: Manifest | None, command: str) -> Intake:
    from models.settings import get_settings

    settings = get_settings()
    rules = load_rules(settings.alert_rules_file, SUGGESTABLE)
    parsed = read_artifact(path, manifest=manifest, received_at=datetime.now(UTC))
    cap = IncidentCap(limit=settings.incident_cap_per_key, window=settings.incident_cap_window)
    database = connect(settings.database_url)
    try:
        async with transaction(database.writer) as session:
            intake = await dbt.take_artifact(
                session, parsed, manifest=manifest, rules=rules, cap=cap
            )
            await record_entry(
                session,
                principal=operator(),
                role=None,
                client="local",
                method="CLI",
                path=command,
                status=200,
            )
            return intake
    finally:
        await database.dispose()


@app.command("dbt")
def ingest_dbt(
    artifact: Annotated[
        Path,
        typer.Argument(help="run_results.json (dbt test / build) or sources.json", exists=True),
    ],
    manifest: Annotated[
        Path | None,
        typer.Option(help="The project's manifest.json (default: the configured project's)"),
    ] = None,
) -> None:
    """Open, count or resolve one incident per failing test, failed model or stale source."""
    from models.settings import get_settings

    settings = get_settings()
    try:
        found = dbt.manifest_of(settings, manifest)
        migrate.upgrade(settings.database_url)
        command = f"intervene ingest dbt {artifact.name}"
        intake = asyncio.run(_ingest(artifact, found, command))
    except (ArtifactError, ConfigError, ManifestMissing) as exc:
        typer.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(2) from exc
    for item in intake.taken:
        incident = f" incident {item.incident_id}" if item.incident_id else ""
        typer.echo(f"{item.outcome.value:<12} {item.key}{incident}")
    for refusal in intake.refused:
        typer.echo(f"refused      results[{refusal.index}].{refusal.field}: {refusal.message}")
    counts = ", ".join(f"{n} {outcome.value}" for outcome, n in sorted(intake.outcomes().items()))
    typer.echo(f"{len(intake.taken)} results taken ({counts or 'nothing to do'})")
