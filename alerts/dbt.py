"""dbt's artifacts as alerts: `run_results.json` (dbt test / dbt build) and `sources.json` (dbt
source freshness), taken like any source's, grouped by the project's lineage where the manifest
is at hand: a failure downstream of a node whose incident is active joins that incident.

The API (POST /api/integrations/dbt/run-results) and `intervene ingest dbt` both come here.
"""

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from alerts.intake import Intake, take
from alerts.rules import AlertRules
from integrations.dbt_results import Parsed, parse_artifact
from integrations.warehouse import DbtProject, Manifest, ManifestMissing, load_manifest
from models.services.alert_intake import Downstream
from models.services.incidents import IncidentCap
from models.settings import Settings


def manifest_of(settings: Settings, path: Path | None = None) -> Manifest | None:
    """The manifest at `path`, else the project's (None when it was never parsed: no lineage,
    and a test names no models)."""
    try:
        return load_manifest(path) if path else DbtProject.from_settings(settings).manifest()
    except ManifestMissing:
        if path:
            raise
        return None


def downstream(manifest: Manifest | None) -> Downstream | None:
    return manifest.lineage.is_downstream if manifest is not None else None


def parse(document: Any, manifest: Manifest | None, received_at: datetime) -> Parsed:
    return parse_artifact(document, manifest=manifest, received_at=received_at)


async def take_artifact(
    session: AsyncSession,
    parsed: Parsed,
    *,
    manifest: Manifest | None,
    rules: AlertRules,
    cap: IncidentCap,
) -> Intake:
    return await take(
        session,
        parsed.alerts,
        rules=rules,
        cap=cap,
        refused=parsed.refused,
        downstream=downstream(manifest),
    )
