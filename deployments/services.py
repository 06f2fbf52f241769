"""`intervene services`: Intervene's own background loops, beside any work pool.

The reconciler (deployments/reconciler.py), webhook delivery (deployments/webhooks.py), the
follower of Prefect's events (deployments/prefect_events.py), the remediation loop
(deployments/remediator.py), escalation with its notifications (deployments/notifier.py) and
the incident reports' Prefect artifacts (deployments/report_artifacts.py), each a `Loop` in
`LOOPS`, supervised on one event loop: a loop that raises is logged and started again after a
backoff (1 s doubling to 60 s, back to 1 s once it has run a minute); a loop that returns has
nothing to do here (the follower, with no pipeline watched) and is not started again. SIGTERM
or SIGINT cancels them all and returns once each has closed its database engine.

This process never registers, changes or serves a deployment: flows run on Prefect work pools
(`prefect worker start --pool intervene`) or under `intervene worker`. The reconciler's repairs
are idempotent and webhook subscriptions are leased to one deliverer at a time; the event
follower wants one process per installation (docs/prefect-pipelines.md).
"""

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from deployments.notifier import notify_forever
from deployments.prefect_events import follow_prefect_events
from deployments.reconciler import reconcile_forever
from deployments.remediator import remediate_forever
from deployments.report_artifacts import publish_forever
from deployments.silences import release_forever
from deployments.webhooks import deliver_forever
from models.settings import Settings

log = logging.getLogger("intervene.services")

BACKOFF_START = 1.0
BACKOFF_MAX = 60.0
HEALTHY_AFTER = 60.0  # a loop that ran this long before failing starts again at once-ish


@dataclass(frozen=True)
class Loop:
    name: str
    run: Callable[[Settings], Awaitable[None]]


LOOPS: list[Loop] = [
    Loop("reconciler", reconcile_forever),
    Loop("webhooks", deliver_forever),
    Loop("prefect_events", follow_prefect_events),
    Loop("remediation", remediate_forever),
    Loop("silences", release_forever),
    Loop("notifications", notify_forever),
    Loop("reports", publish_forever),
]


async def supervise(
    loop: Loop,
    settings: Settings,
    *,
    backoff_start: float = BACKOFF_START,
    backoff_max: float = BACKOFF_MAX,
) -> None:
    """Run `loop` until it returns: started again after each failure."""
    backoff = backoff_start
    while True:
        started = time.monotonic()
        try:
            await loop.run(settings)
            log.info("loop %s finished: nothing for it to do", loop.name)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("loop %s failed; starting it again in %.0f s", loop.name, backoff)
        if time.monotonic() - started >= HEALTHY_AFTER:
            backoff = backoff_start
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, backoff_max)


async def run_loops(
    settings: Settings, loops: Sequence[Loop] | None = None, stop: asyncio.Event | None = None
) -> None:
    """Every loop until `stop` is set (by SIGTERM/SIGINT when run from the CLI)."""
    stop = stop or asyncio.Event()
    tasks = [
        asyncio.create_task(supervise(loop, settings), name=loop.name)
        for loop in (LOOPS if loops is None else loops)
    ]
    log.info("running %s", ", ".join(task.get_name() for task in tasks))
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("stopped")


async def _main(settings: Settings) -> None:
    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        running.add_signal_handler(signum, stop.set)
    await run_loops(settings, stop=stop)


def run_services(settings: Settings) -> None:
    asyncio.run(_main(settings))
