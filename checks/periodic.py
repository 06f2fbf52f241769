"""A background pass repeated while the API runs (the stale-check watchdog, the SLA sweep)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("intervene.api")


class Periodic:
    """Runs `work` every `seconds` on the API's event loop; a failing pass is logged and the
    next one runs anyway (the database may be back by then)."""

    def __init__(self, name: str, seconds: float, work: Callable[[], Awaitable[Any]]) -> None:
        self.name, self.seconds, self.work = name, seconds, work
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.seconds)
            try:
                await self.work()
            except Exception:
                log.exception("%s pass failed", self.name)
