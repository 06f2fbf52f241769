"""Alembic environment: one portable tree for SQLite (batch mode) and PostgreSQL.

The URL comes from `config.attributes["url"]` (set by `models.migrate`) or from the settings.
On PostgreSQL an advisory lock makes concurrent start-ups (several API processes) take turns.
"""

from alembic import context
from sqlalchemy import create_engine, pool, text

from models.db import configure_sqlite, ensure_sqlite_directory, sync_url
from models.settings import get_settings
from models.tables import Base

MIGRATION_LOCK_ID = 0x1A7E_5E5E  # any constant shared by every Intervene process

config = context.config
url = sync_url(config.attributes.get("url") or get_settings().database_url)


def run_offline() -> None:
    context.configure(
        url=url,
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    ensure_sqlite_directory(url)
    engine = create_engine(url, poolclass=pool.NullPool)
    is_sqlite = url.get_backend_name() == "sqlite"
    if is_sqlite:
        configure_sqlite(engine, foreign_keys=False)
    with engine.connect() as connection:
        if not is_sqlite:
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=is_sqlite,
                transactional_ddl=True,  # SQLite too: BEGIN is ours (configure_sqlite)
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if not is_sqlite:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID}
                )
                connection.commit()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
