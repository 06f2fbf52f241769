"""Live events: one reader of the `events` table per API process, fanned out to every client.

    events table --(LISTEN/NOTIFY wake-up, or polling)--> Broadcaster --> Subscriber queues
                                                                           --> SSE responses

Event ids follow commit order (see `models.event.order_new_events`), so the reader's position
is a single id: everything after it is new. A client subscribes at the reader's current
position P (atomically: no await in between), reads `last_event_id < id <= P` from the
database, then takes live events, all > P: no gap, no duplicate. Each client has a bounded
queue; the reader never waits for a client. One whose queue fills up is behind: it catches up
from the database the same way, so a slow client costs neither memory nor the others' time,
and one that stops reading altogether is disconnected by the send timeout.

The send timeout is kept by a watchdog, not by a timer per send: sse-starlette wraps each send
in a cancel scope with a deadline, which at 1,000 clients is 1,000 timers per event and about a
third of the fan-out's CPU (bench/sse_fanout.py). `EventStream` only notes when a send started;
once a second the watchdog disconnects the clients whose send has waited longer than the timeout.
"""

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio
from sqlalchemy import delete, func, select
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.event import ensure_bytes
from starlette.types import Message, Receive, Scope, Send

from models.base import isoformat, utcnow
from models.db import Database, transaction
from models.event import Event, EventRetention
from models.listen import wake_on_events
from models.settings import Settings

log = logging.getLogger("intervene.sse")

BATCH = 500
PRUNE_EVERY_SECONDS = 3600
WATCHDOG_EVERY_SECONDS = 1.0
STOP_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class Frame:
    """One event, encoded once for every subscriber."""

    id: int
    type: str
    incident_id: int | None
    data: bytes


CLOSE = Frame(id=-1, type="close", incident_id=None, data=b"")


class Mailbox:
    """A bounded FIFO with one reader that takes everything waiting at once. Leaner than
    asyncio.Queue on the fan-out's hot path: one future per wait, no task accounting."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._frames: deque[Frame] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def empty(self) -> bool:
        return not self._frames

    def put(self, frame: Frame) -> bool:
        """False when full."""
        if len(self._frames) >= self.size:
            return False
        self._frames.append(frame)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        return True

    async def take_all(self) -> list[Frame]:
        while not self._frames:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        frames = list(self._frames)
        self._frames.clear()
        return frames

    def close(self) -> None:
        """Drop what waits and leave only CLOSE."""
        self._frames.clear()
        self._frames.append(CLOSE)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class EventStream(EventSourceResponse):
    """sse-starlette's response with the send timeout left to the broadcaster's watchdog: a
    send notes when it started, and `disconnect` cancels the whole response (its connection
    is then closed by the server)."""

    def __init__(
        self,
        content: Callable[["EventStream"], AsyncIterator[Any]],
        status_code: int = 200,  # FastAPI's OpenAPI reads the default status from here
        **options: Any,
    ) -> None:
        super().__init__(content(self), status_code=status_code, **options)
        self.sending_since: float | None = None
        self._cancel = anyio.CancelScope()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self._cancel:
            await super().__call__(scope, receive, send)

    async def _stream_response(self, send: Send) -> None:
        """sse-starlette's loop without its per-chunk extras (a debug log call, a bytes check,
        a nested send): every chunk here is bytes encoded once for all subscribers, or a
        ServerSentEvent. Its failure path is the same: close the iterator, then re-raise."""
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        async for data in self.body_iterator:
            chunk = data if isinstance(data, bytes) else ensure_bytes(data, self.sep)
            self.sending_since = time.monotonic()
            try:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except BaseException:
                with anyio.move_on_after(self._cleanup_timeout, shield=True):
                    await self.body_iterator.aclose()  # type: ignore[attr-defined]
                raise
            self.sending_since = None
        async with self._send_lock:
            self.active = False
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_with_timeout(self, send: Send, message: Message) -> None:
        self.sending_since = time.monotonic()
        try:
            await send(message)
        finally:
            self.sending_since = None

    def stuck(self, now: float, timeout: float) -> bool:
        return self.sending_since is not None and now - self.sending_since > timeout

    def disconnect(self) -> None:
        self._cancel.cancel()


def encode(row: Event) -> Frame:
    message = ServerSentEvent(id=str(row.id), event=row.type, data=json.dumps(row.payload))
    return Frame(id=row.id, type=row.type, incident_id=row.incident_id, data=message.encode())


@dataclass(eq=False)
class Subscriber:
    """One client: a bounded mailbox of live frames, and a position to catch up from.

    When the queue is full the client is behind: it stops taking live frames and, once it has
    sent what it holds, reads what it missed from the database, then takes live frames again.
    Memory stays bounded and nothing is lost or repeated; a client that stops reading is
    disconnected by the send timeout, and nobody waits for it.
    """

    mailbox: Mailbox
    last_queued: int  # newest event id handed to this client (queued, or caught up to)
    behind: bool = False
    types: frozenset[str] | None = None
    incident_id: int | None = None
    connection: EventStream | None = None
    still_allowed: Callable[[], Awaitable[bool]] | None = None  # its token, asked again
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def wants(self, frame: Frame) -> bool:
        if self.types is not None and frame.type not in self.types:
            return False
        return self.incident_id is None or frame.incident_id == self.incident_id

    def offer(self, frame: Frame) -> None:
        if self.behind or frame.id <= self.last_queued or not self.wants(frame):
            return
        if self.mailbox.put(frame):
            self.last_queued = frame.id
        else:
            self.behind = True

    def close(self) -> None:
        self.mailbox.close()


class Broadcaster:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.position = 0
        self._ready = False  # position read from the database
        self.subscribers: set[Subscriber] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        is_sqlite = database.dialect == "sqlite"
        self.poll_seconds = settings.sse_poll_seconds or (0.2 if is_sqlite else 2.0)

    async def start(self) -> None:
        try:
            await self._init_position()
        except Exception:  # the API still starts; the reader retries
            log.exception("events table unreadable at start-up; retrying in the background")
        self._tasks = [asyncio.create_task(self._read_forever(), name="sse-reader")]
        if self.database.dialect == "postgresql":
            self._tasks.append(asyncio.create_task(self._listen_forever(), name="sse-listen"))
        self._tasks.append(asyncio.create_task(self._prune_forever(), name="sse-prune"))
        self._tasks.append(asyncio.create_task(self._watch_forever(), name="sse-watchdog"))
        self._tasks.append(asyncio.create_task(self._recheck_forever(), name="sse-recheck"))

    async def stop(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber.close()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=STOP_WAIT_SECONDS)
            for task in stuck:  # shutting down must not hang on one of them
                log.warning(
                    "SSE task %s did not stop within %.0f s", task.get_name(), STOP_WAIT_SECONDS
                )

    def subscribe(
        self,
        types: frozenset[str] | None,
        incident_id: int | None,
        resume_after: int | None,
        connection: EventStream | None = None,
        still_allowed: Callable[[], Awaitable[bool]] | None = None,
    ) -> Subscriber:
        """Live frames from the current position on; with `resume_after`, the missed ones
        first (from the database, as for a client that fell behind)."""
        subscriber = Subscriber(
            mailbox=Mailbox(self.settings.sse_queue_size),
            last_queued=self.position if resume_after is None else resume_after,
            behind=resume_after is not None and resume_after < self.position,
            types=types,
            incident_id=incident_id,
            connection=connection,
            still_allowed=still_allowed,
        )
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    async def catch_up(self, subscriber: Subscriber) -> AsyncIterator[bytes]:
        """The frames a client missed while behind, read from the database."""
        after, target = subscriber.last_queued, self.position
        subscriber.last_queued, subscriber.behind = target, False  # new frames queue again
        while after < target:
            rows = await self.fetch(
                after=after,
                up_to=target,
                types=subscriber.types,
                incident_id=subscriber.incident_id,
            )
            for row in rows:
                yield encode(row).data
            if len(rows) < BATCH:
                return
            after = rows[-1].id

    async def _read_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
            try:
                await self._read_new()
            except Exception:  # the database may be back on the next pass
                log.exception("reading new events failed")
                await asyncio.sleep(1)

    async def _init_position(self) -> None:
        async with transaction(self.database.reader) as session:
            self.position = await session.scalar(select(func.max(Event.id))) or 0
        self._ready = True

    async def _read_new(self) -> None:
        """Read and fan out what is new; with no one listening, nothing is read (a storm writes
        a hundred events a request): `refresh` moves the position when a client comes."""
        if not self._ready:
            await self._init_position()
            return
        while self.subscribers:
            rows = await self.fetch(after=self.position, up_to=None)
            for row in rows:
                if row.id <= self.position:  # refresh() moved past it while this read ran
                    continue
                frame = encode(row)
                self.position = row.id
                for subscriber in tuple(self.subscribers):
                    subscriber.offer(frame)
            if len(rows) < BATCH:
                return

    async def refresh(self) -> None:
        """Before a client subscribes (and before its answer starts, so an outage is a 503):
        with no one listening the reader has read nothing, so the position moves to the newest
        event, and the client starts from now. One that subscribed meanwhile was given the
        position as it was: it stays, and the events after it are read for that client."""
        if self.subscribers:
            return
        newest = await self.newest()
        if not self.subscribers:
            self.position = max(self.position, newest)

    async def fetch(
        self,
        *,
        after: int,
        up_to: int | None,
        types: frozenset[str] | None = None,
        incident_id: int | None = None,
    ) -> list[Event]:
        query = select(Event).where(Event.id > after).order_by(Event.id).limit(BATCH)
        if up_to is not None:
            query = query.where(Event.id <= up_to)
        if types is not None:
            query = query.where(Event.type.in_(types))
        if incident_id is not None:
            query = query.where(Event.incident_id == incident_id)
        async with transaction(self.database.reader) as session:
            return list(await session.scalars(query))

    async def _listen_forever(self) -> None:
        """LISTEN on PostgreSQL: every commit that wrote events wakes the reader at once."""
        await wake_on_events(self.settings.database_url, self._wake)

    async def _watch_forever(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_EVERY_SECONDS)
            self.drop_stuck()

    def drop_stuck(self) -> None:
        """Disconnect the clients that took no data for the send timeout (they stopped
        reading: their socket buffers are full)."""
        now, timeout = time.monotonic(), self.settings.sse_send_timeout_seconds
        for subscriber in tuple(self.subscribers):
            connection = subscriber.connection
            if connection is not None and connection.stuck(now, timeout):
                log.info(
                    "disconnecting SSE client %s: it took no data for %.0f s",
                    subscriber.id,
                    timeout,
                )
                self.unsubscribe(subscriber)
                connection.disconnect()

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sse_heartbeat_seconds)
            try:
                await self.recheck()
            except Exception:  # the database is away: the streams stay, asked again next time
                log.warning("re-checking the event streams' tokens failed", exc_info=True)

    async def recheck(self) -> None:
        """End the streams whose token is no longer accepted (revoked): a stream outlives the
        request that checked its token. One client after another, through the requests' token
        cache, so a token many streams share costs one lookup per cache period. A stream
        ended here finishes cleanly; the client's reconnect gets 401."""
        for subscriber in tuple(self.subscribers):
            if subscriber.still_allowed is None or await subscriber.still_allowed():
                continue
            log.info("ending SSE client %s: its token is no longer accepted", subscriber.id)
            self.unsubscribe(subscriber)
            subscriber.close()

    async def _prune_forever(self) -> None:
        while True:
            try:
                await self.prune()
            except Exception:
                log.exception("pruning old events failed")
            await asyncio.sleep(PRUNE_EVERY_SECONDS)

    async def prune(self) -> int:
        """Delete events older than the retention window; remember how far that reached."""
        cutoff = utcnow() - timedelta(days=self.settings.sse_retention_days)
        async with transaction(self.database.writer) as session:
            through = await session.scalar(
                select(func.max(Event.id)).where(Event.created_at < cutoff)
            )
            if through is None:
                return 0
            result = await session.execute(delete(Event).where(Event.id <= through))
            retention = await session.get(EventRetention, 1, with_for_update=True)
            if retention is None:
                session.add(EventRetention(id=1, pruned_through=through, pruned_at=utcnow()))
            elif through > retention.pruned_through:
                retention.pruned_through, retention.pruned_at = through, utcnow()
            return int(getattr(result, "rowcount", 0) or 0)

    async def newest(self) -> int:
        async with transaction(self.database.reader) as session:
            return await session.scalar(select(func.max(Event.id))) or 0

    async def pruned_through(self) -> int:
        async with transaction(self.database.reader) as session:
            return await session.scalar(select(EventRetention.pruned_through)) or 0


def heartbeat() -> ServerSentEvent:
    return ServerSentEvent(event="heartbeat", data=json.dumps({"timestamp": isoformat(utcnow())}))


async def stream(
    broadcaster: Broadcaster,
    *,
    last_event_id: int | None,
    types: frozenset[str] | None,
    incident_id: int | None,
    reset: ServerSentEvent | None = None,
    connection: EventStream | None = None,
    still_allowed: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[ServerSentEvent | bytes]:
    """`connected`, then (on a resume) the missed events, then live ones. Frames that queued
    up while the previous send was under way go out together, in one write. `last_event_id`
    and `reset` come from check_position, read before the answer starts."""
    subscriber = broadcaster.subscribe(types, incident_id, last_event_id, connection, still_allowed)
    try:
        yield ServerSentEvent(
            event="connected",
            data=json.dumps({"subscriber_id": subscriber.id, "timestamp": isoformat(utcnow())}),
            retry=broadcaster.settings.sse_retry_ms,
        )
        if reset is not None:
            yield reset
        while True:
            if subscriber.behind and subscriber.mailbox.empty():
                async for data in broadcaster.catch_up(subscriber):
                    yield data
                continue
            frames = await subscriber.mailbox.take_all()
            if any(frame is CLOSE for frame in frames):
                return
            yield b"".join(frame.data for frame in frames)
    finally:
        broadcaster.unsubscribe(subscriber)


async def check_position(
    broadcaster: Broadcaster, last_event_id: int | None
) -> tuple[ServerSentEvent | None, int | None]:
    """A `reset` event when the client's position is gone (pruned) or unknown (ahead of the
    log, e.g. another database), and where to resume from then. It reads the database, so the
    route calls it before the stream's 200 goes out: an outage is then a 503, not a cut stream."""
    if last_event_id is None:
        return None, None
    pruned = await broadcaster.pruned_through()
    if pruned <= last_event_id <= broadcaster.position:
        return None, last_event_id
    if last_event_id > broadcaster.position and last_event_id <= await broadcaster.newest():
        return None, last_event_id  # this process's reader is a moment behind the client
    reason = "pruned" if last_event_id < pruned else "unknown_position"
    reset = ServerSentEvent(
        event="reset",
        data=json.dumps(
            {"reason": reason, "last_event_id": last_event_id, "oldest_available_after": pruned}
        ),
    )
    return reset, (pruned if reason == "pruned" else None)
