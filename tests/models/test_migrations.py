"""Migrations up, check, down and up again, on both databases."""

from collections.abc import Callable

from sqlalchemy import create_engine, inspect, pool

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
