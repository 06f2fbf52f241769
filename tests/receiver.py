"""A webhook receiver for the tests: a real HTTP server on 127.0.0.1 that records every request
and answers as scripted (a status per request, then 200), and can hold one request until the
test lets it go (to kill a worker while a delivery is in flight)."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # popped per request; then 200
    hold_request: int | None = None  # 1-based number of the request to hold
    held: threading.Event = field(default_factory=threading.Event)  # set when it is held
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def event_ids(self) -> list[int]:
        return [int(r.headers["x-intervene-event-id"]) for r in self.requests]


def serve_receiver() -> Iterator[Receiver]:
    receiver: Receiver | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert receiver is not None
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with receiver.lock:
                receiver.requests.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body)
                )
                number = len(receiver.requests)
                status = receiver.answers.pop(0) if receiver.answers else 200
            if number == receiver.hold_request:
                receiver.held.set()
                receiver.release.wait(30)
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: object) -> None:
            pass

    with serving(Handler) as port:
        receiver = Receiver(f"http://127.0.0.1:{port}/hook")
        try:
            yield receiver
        finally:
            receiver.release.set()


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """A threaded HTTP server of `handler` on a free port of 127.0.0.1 (yielded), stopped after."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
