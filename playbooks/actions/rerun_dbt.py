"""rerun_dbt: re-run dbt models to refresh stale or broken tables.

Fixes freshness and quality invariants whose cause is a table that was not rebuilt. Touches the
warehouse tables of the selected models (with `upstream`, their ancestors too); `full_refresh`
rebuilds incremental models from scratch, which is why it needs approval. No rollback: a rebuild
cannot be undone, only run again. dbt runs in-process through `dbtRunner`, never a shell, and
one run at a time (its turn in Intervene's database, flows/turns.py: dbt is not safe to run
twice in one process and DuckDB allows one writer).
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from integrations.warehouse import Manifest
from playbooks.plan import Plan

ACTION_TYPE = "rerun_dbt"
# The default estimate (playbooks/estimates.py scales it by how long the last runs took)
BASE_SECONDS = 60
SECONDS_PER_MODEL = 120
FULL_REFRESH_FACTOR = 3
USD_PER_SECOND = 0.05 / 300


def estimate(models: int, *, full_refresh: bool) -> tuple[int, float]:
    """Seconds and USD by default: what the plan says, and the catalog for one model."""
    per_model = SECONDS_PER_MODEL * (FULL_REFRESH_FACTOR if full_refresh else 1)
    seconds = BASE_SECONDS + per_model * models
    return seconds, round(seconds * USD_PER_SECOND, 4)


ModelName = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: Annotated[
        str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\w.:-]+$")
    ] = Field(description="Your reference for this run (ticket, task or incident id).")
    models: list[ModelName] = Field(min_length=1, max_length=50)
    full_refresh: bool = False
    upstream: bool = False
    threads: int = Field(default=4, ge=1, le=16)


PARAMS_DOC = {
    "task_id": "string (required)",
    "models": "array[string] (required)",
    "full_refresh": "boolean (optional, default: false)",
    "upstream": "boolean (optional, default: false)",
    "threads": "integer (optional, default: 4)",
}


def selectors(params: Params) -> list[str]:
    return [f"+{name}" if params.upstream else name for name in params.models]


def command_line(params: Params) -> str:
    """How the run reads as a dbt command (shown to people; never executed through a shell)."""
    parts = ["dbt", "run", "--select", *selectors(params), "--threads", str(params.threads)]
    if params.full_refresh:
        parts.append("--full-refresh")
    return " ".join(parts)


def plan(params: Params, manifest: Manifest) -> Plan:
    models = manifest.select(params.models, upstream=params.upstream)
    seconds, usd = estimate(len(models), full_refresh=params.full_refresh)
    incremental = [m for m in models if manifest.materialized.get(m) == "incremental"]
    count = len(models)
    changes = [f"Will re-run {count} dbt model{'s' if count != 1 else ''}"]
    changes += [f"Model: {name}" for name in models]
    if params.upstream:
        changes.append(f"Includes upstream models of: {', '.join(params.models)}")
    if params.full_refresh:
        rebuilt = ", ".join(incremental) or "none of the selected models"
        changes.append(f"Full refresh: incremental models rebuilt from scratch ({rebuilt})")
    else:
        changes.append("No full refresh (incremental only)")
    command = command_line(params)
    return Plan(
        message=f"Command: {command}",
        details={"command": command, "models": models, "threads": params.threads},
        changes=changes,
        estimated_duration=seconds,
        estimated_cost=usd,
        requires_approval=params.full_refresh,
        rollback_available=False,
    )
