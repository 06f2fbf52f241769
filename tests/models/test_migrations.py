"""Migrations up, check, down and up again, on both databases."""

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, inspect, pool, text
from sqlalchemy.exc import IntegrityError

from models import migrate
from models.db import sync_url
from models.tables import Base


def table_names(url: str) -> set[str]:
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_check_downgrade_upgrade(fresh_database_url: Callable[[], str]) -> None:
    url = fresh_database_url()
    expected = {table.name for table in Base.metadata.sorted_tables}

    migrate.upgrade(url)
    assert expected <= table_names(url)
    head = migrate.current_revision(url)
    assert head is not None
    migrate.check(url)  # models and migrations agree

    migrate.upgrade(url)  # idempotent: a second start-up changes nothing
    assert migrate.current_revision(url) == head

    migrate.downgrade(url, "base")
    assert table_names(url) & expected == set()
    assert migrate.current_revision(url) is None

    migrate.upgrade(url)
    assert expected <= table_names(url)
    assert migrate.current_revision(url) == head


def test_migration_0012_admits_pipeline_incidents_and_still_refuses_other_kinds(
    fresh_database_url: Callable[[], str],
) -> None:
    url = fresh_database_url()
    migrate.upgrade(url, "0011")
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    insert = text(
        "INSERT INTO incidents (kind, key, severity, status, summary, details, playbooks,"
        " metadata, occurrence_count, reopen_count, last_seen_at, created_at, updated_at)"
        " VALUES (:kind, :key, 'sev3', 'open', 's', '{}', '[]', '{}', 1, 0, :now, :now, :now)"
    )
    now = datetime.now(UTC)
    try:
        with engine.begin() as connection:
            connection.execute(insert, {"kind": "invariant", "key": "kept", "now": now})
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(insert, {"kind": "pipeline", "key": "early", "now": now})

        migrate.upgrade(url)
        with engine.begin() as connection:
            connection.execute(insert, {"kind": "pipeline", "key": "flow/deployment", "now": now})
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(insert, {"kind": "bogus", "key": "no", "now": now})
        with engine.connect() as connection:
            kinds = connection.execute(text("SELECT kind, key FROM incidents ORDER BY id")).all()
        assert [tuple(row) for row in kinds] == [
            ("invariant", "kept"),
            ("pipeline", "flow/deployment"),
        ]
    finally:
        engine.dispose()


def test_migration_0021_counts_the_reports_already_there_as_published(
    fresh_database_url: Callable[[], str],
) -> None:
    """An upgrade puts no burst of artifacts on old runs: each incident's report as it stands
    is marked shown, on its last action run; only what changes later is published."""
    url = fresh_database_url()
    migrate.upgrade(url, "0020")
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    now = datetime.now(UTC)
    incident = text(
        "INSERT INTO incidents (kind, key, severity, status, summary, details, playbooks,"
        " metadata, occurrence_count, reopen_count, last_seen_at, created_at, updated_at)"
        " VALUES ('invariant', :key, 'sev3', 'resolved', 's', '{}', '[]', '{}', 1, 0,"
        " :now, :now, :now)"
    )
    entry = text(
        "INSERT INTO incident_timeline (incident_id, actor, verb, notes, at)"
        " VALUES (:incident, 'ann', 'note', 'n', :now)"
    )
    action = text(
        "INSERT INTO actions (incident_id, action_type, params, dry_run, status, details,"
        " changes, requires_approval, requested_by, estimated_duration, estimated_cost,"
        " rollback_available, flow_run_id, created_at, updated_at) VALUES (:incident,"
        " 'rerun_dbt', '{}', :dry, 'success', '{}', '[]', :no, 'ann', 0, 0, :no, :run,"
        " :now, :now)"
    )
    try:
        with engine.begin() as connection:
            for key in ("ran", "planned", "quiet"):
                connection.execute(incident, {"key": key, "now": now})
            ids = dict(connection.execute(text("SELECT key, id FROM incidents")).all())
            for name in ("ran", "planned"):
                for _ in range(2):
                    connection.execute(entry, {"incident": ids[name], "now": now})
            for run in ("run-1", "run-2", None):
                connection.execute(action, {"incident": ids["ran"], "dry": run is None,
                                            "no": False, "run": run, "now": now})  # fmt: skip
            connection.execute(action, {"incident": ids["planned"], "dry": True, "no": False,
                                        "run": None, "now": now})  # fmt: skip
        migrate.upgrade(url)
        with engine.connect() as connection:
            seen = connection.execute(
                text("SELECT incident_id, entry_id, flow_run_id FROM incident_report_artifacts")
            ).all()
            newest = connection.execute(
                text("SELECT max(id) FROM incident_timeline WHERE incident_id = :i"),
                {"i": ids["ran"]},
            ).scalar_one()
        assert [tuple(row) for row in seen] == [(ids["ran"], newest, "run-2")]
    finally:
        engine.dispose()
