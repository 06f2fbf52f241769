"""The hooks' database: one engine for a whole flow run, and one of its own for a call made
outside a run (the state hooks, which may run in the runner's process)."""

from typing import Any

import pytest

from flows import hooks
from flows.admission import RunRefused
from models.db import Database, connect

MISSING = 999_999  # no such action: begin refuses it after one read


async def test_the_calls_of_one_run_share_one_engine(
    db: Database, flow_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    engines: list[Database] = []

    def counting(url: str, **options: Any) -> Database:
        engines.append(connect(url, **options))
        return engines[-1]

    monkeypatch.setattr(hooks, "connect", counting)

    async with hooks.run_database():
        for _ in range(2):
            with pytest.raises(RunRefused, match=f"action {MISSING} does not exist"):
                await hooks.begin(MISSING)
    assert len(engines) == 1

    with pytest.raises(RunRefused):  # outside a run: an engine of the call's own
        await hooks.begin(MISSING)
    assert len(engines) == 2
