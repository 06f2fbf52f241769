"""`intervene tokens create|list|revoke` against a real database, and the token it prints
used against the app on that database."""

import logging
import subprocess
import sys
from pathlib import Path

from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from api.auth import RedactTokens
from api.main import create_app
from models.access import AuditEntry
from models.db import connect, transaction
from models.settings import Settings
from tests.auth import bearer
from tests.fakes import RecordingLauncher

CLI = [sys.executable, "-m", "intervene_cli", "tokens"]


def run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"INTERVENE_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120)


async def test_create_prints_the_token_last_and_revoke_ends_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    created = run(url, "create", "--name", "pager-bot", "--role", "responder")
    secret = created.stdout.strip().splitlines()[-1]
    app = create_app(Settings(database_url=url, _env_file=None), launcher=RecordingLauncher())  # type: ignore[call-arg]

    async with (
        app.router.lifespan_context(app),
        AsyncClient(
            transport=ASGITransport(app=app), base_url="http://t", headers=bearer(secret)
        ) as http,
    ):
        before = await http.get("/api/incidents")
        listed = run(url, "list")
        bad_role = run(url, "create", "--name", "x", "--role", "root")
        revoked = run(url, "revoke", "1")
        app.state.authenticator.forget()  # the CLI is another process: no cache to clear here
        after = await http.get("/api/incidents")
        missing = run(url, "revoke", "99")

    assert created.returncode == 0, created.stderr
    assert secret.startswith("ivt_")
    assert " " not in secret
    assert before.status_code == 200
    assert "pager-bot\tresponder" in listed.stdout
    assert secret not in listed.stdout  # only a prefix is ever shown again
    assert bad_role.returncode != 0
    assert revoked.returncode == 0
    assert after.status_code == 401
    assert missing.returncode == 1
    assert "Token 99 not found" in missing.stderr
    assert "refuses it within 10 seconds (the API's token cache)" in revoked.stdout
    assert "within" in run(url, "revoke", "--help").stdout


async def test_create_and_revoke_are_audited_as_the_local_operator(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    run(url, "create", "--name", "pager-bot", "--role", "responder")
    run(url, "revoke", "1")
    run(url, "revoke", "99")
    database = connect(url)
    try:
        async with transaction(database.reader) as session:
            entries = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    finally:
        await database.dispose()

    assert [(e.method, e.path, e.status, e.client, e.role) for e in entries] == [
        ("CLI", "intervene tokens create --name pager-bot --role responder", 201, "local", None),
        ("CLI", "intervene tokens revoke 1", 200, "local", None),
        ("CLI", "intervene tokens revoke 99", 404, "local", None),
    ]
    assert all(e.principal and e.principal.startswith("cli:") for e in entries)
    assert entries[0].principal != "cli:"


def test_tokens_in_urls_never_reach_the_logs() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/sse/events?types=x&access_token=ivt_secret123", "1.1",
         200), None,
    )  # fmt: skip

    RedactTokens().filter(record)

    assert "ivt_secret123" not in record.getMessage()
    assert "access_token=***" in record.getMessage()
