"""The demo warehouse's raw data: emails that keep arriving, agent runs, planner evaluations.

`load_demo_data` (re)creates three raw tables with timestamps relative to now, shaped so the
shipped checks tell a story: latency is over budget and the canary planner regressed at once,
quality and cost are fine, and the inbox stays fresh only while dbt keeps rebuilding it. The
feeder adds an email now and then; `inbox_emails` (a dbt model) falls behind until `rerun_dbt`
runs, so within minutes the freshness check opens an incident that the playbook fixes.
"""

import random
from datetime import UTC, datetime, timedelta

from integrations.warehouse import (
    DbtProject,
    dbt_environment,
    invoke_dbt,
    open_warehouse,
    warehouse_path,
)

SUBJECTS = [
    "Invoice #{n} overdue",
    "Password reset request",
    "Meeting notes {n}",
    "Your order {n} has shipped",
    "Re: contract renewal",
    "URGENT: production outage",
    "Refund for order {n}",
    "Quarterly report draft",
    "Security alert: new sign-in",
]
SENDERS = ["billing@acme.test", "noreply@shop.test", "alice@example.com", "ops@example.com"]

TABLES = {
    "raw_emails": "email_id integer, sender varchar, subject varchar, received_at timestamptz",
    "agent_runs": "agent varchar, started_at timestamptz, quality_score double precision,"
    " latency_ms double precision, cost_usd double precision",
    "planner_evals": "version varchar, role varchar, accuracy double precision,"
    " evaluated_at timestamptz",
}


def _email(rng: random.Random, n: int, at: datetime) -> tuple[object, ...]:
    return (n, rng.choice(SENDERS), rng.choice(SUBJECTS).format(n=1000 + n), at)


def load_demo_data(warehouse_url: str, *, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    rng = random.Random(7)
    path = warehouse_path(warehouse_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    emails = [_email(rng, n, now - timedelta(minutes=3 * (200 - n) + 1)) for n in range(1, 201)]
    runs = [
        (
            "inbox.triage",
            now - timedelta(minutes=3 * i),
            rng.gauss(91, 3),
            rng.choice([rng.gauss(420, 80)] * 9 + [rng.gauss(1900, 150)]),
            0.02,
        )
        for i in range(480)
    ]
    evals = [
        ("v1.2.2", "stable", 91.2, now - timedelta(minutes=20)),
        ("v1.2.3", "canary", 85.1, now - timedelta(minutes=10)),
    ]
    with open_warehouse(warehouse_url, read_only=False) as conn:
        cursor = conn.cursor()
        if path is None:
            schema = dbt_environment(warehouse_url)["INTERVENE_DBT_PG_SCHEMA"]
            cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        for table, columns in TABLES.items():
            cursor.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
            cursor.execute(f"CREATE TABLE {table} ({columns})")
        marks = "%s" if path is None else "?"
        for table, rows in (("raw_emails", emails), ("agent_runs", runs), ("planner_evals", evals)):
            width = len(rows[0])
            cursor.executemany(f"INSERT INTO {table} VALUES ({', '.join([marks] * width)})", rows)


def add_email(warehouse_url: str, *, now: datetime | None = None) -> int:
    """One new email in raw_emails (the mail connector at work); returns its id."""
    now = now or datetime.now(UTC)
    marks = "%s" if warehouse_path(warehouse_url) is None else "?"
    with open_warehouse(warehouse_url, read_only=False) as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT coalesce(max(email_id), 0) + 1 FROM raw_emails")
        (next_id,) = cursor.fetchone()
        row = _email(random.Random(next_id), int(next_id), now)
        cursor.execute(f"INSERT INTO raw_emails VALUES ({', '.join([marks] * 4)})", row)
    return int(next_id)


def prepare_warehouse(project: DbtProject, *, build: bool = True) -> None:
    """Parse the project (writes the manifest the API reads); with `build`, load the demo's
    raw data (load_demo_data, below) and build the models on it."""
    project.target_dir.mkdir(parents=True, exist_ok=True)
    steps = ["parse", "run"] if build else ["parse"]
    for step in steps:
        if step == "run":
            load_demo_data(project.warehouse_url)
        outcome = invoke_dbt(project, step)
        if not outcome.success:
            raise RuntimeError(f"dbt {step} failed: {outcome.exception or outcome.result}")
