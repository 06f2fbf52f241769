"""Retries with backoff for failures that pass: a warehouse another process holds, Elasticsearch
answering 429 or 5xx or not answering, the app database dropping a connection. Each retry is a
warning in the flow run's logs (the Prefect UI shows it), with what failed and when it retries;
anything else fails at once.
"""

import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from flows.logs import run_logger
from integrations.warehouse import WarehouseBusy
from models.db import unreachable

T = TypeVar("T")

ATTEMPTS = 4
FIRST_WAIT_SECONDS = 1.0
MAX_WAIT_SECONDS = 10.0


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, WarehouseBusy) or unreachable(exc):  # the app database, gone a moment
        return True
    es = sys.modules.get("elasticsearch")  # imported by the flows that talk to it, only
    if es is None:
        return False
    if isinstance(exc, es.ConnectionError | es.ConnectionTimeout):
        return True
    return isinstance(exc, es.ApiError) and (exc.meta.status == 429 or exc.meta.status >= 500)


async def retrying(
    what: str,
    call: Callable[[], Awaitable[T]],
    *,
    transient: Callable[[BaseException], bool] = is_transient,
) -> T:
    """`await call()`, again after a backoff while it fails transiently (ATTEMPTS in all)."""

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        run_logger().warning(
            "%s failed (attempt %d of %d): %s: %s; retrying in %.1f s",
            what,
            state.attempt_number,
            ATTEMPTS,
            type(error).__name__,
            error,
            wait,
        )

    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(ATTEMPTS),
        wait=wait_exponential_jitter(multiplier=FIRST_WAIT_SECONDS, max=MAX_WAIT_SECONDS),
        retry=retry_if_exception(transient),
        before_sleep=log_retry,
        reraise=True,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover
