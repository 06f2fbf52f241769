"""A local HTTP server that speaks the part of Slack's Web API Intervene uses (chat.postMessage,
chat.update, chat.postEphemeral), for the real slack-sdk client pointed at it (`base_url`).

Like Slack it checks the bot token (`invalid_auth` otherwise) and the body (`channel`, `text`,
blocks that are a list of typed objects, a known `ts` for an update), and answers with a ts
per message. `down` makes it answer 503, as Slack does during an outage. Every accepted call
is kept, in order, with the time it was accepted."""

import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.receiver import serving

TOKEN = "xoxb-intervene-tests"


@dataclass
class Call:
    method: str  # chat.postMessage, chat.update, chat.postEphemeral
    body: dict[str, Any]
    at: float  # time.time() when accepted


@dataclass
class SlackApi:
    base_url: str
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # as shown now
    down: bool = False
    refused: int = 0  # calls refused (bad token, bad body, or down)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, method: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method]


def _problem(method: str, body: dict[str, Any], api: SlackApi) -> str | None:
    if not isinstance(body.get("channel"), str) or not body["channel"]:
        return "channel_not_found"
    if method == "chat.postEphemeral":
        whom = isinstance(body.get("user"), str) and body.get("text")
        return None if whom else "invalid_arguments"
    if not isinstance(body.get("text"), str) or not isinstance(body.get("blocks"), list):
        return "invalid_arguments"
    if not all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in body["blocks"]):
        return "invalid_blocks"
    if method == "chat.update" and (body["channel"], body.get("ts")) not in api.messages:
        return "message_not_found"
    return None


@contextmanager
def serve_slack() -> Iterator[SlackApi]:
    api: SlackApi | None = None
    stamps = itertools.count(1)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert api is not None
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            method = self.path.rsplit("/", 1)[-1]
            if api.down:
                with api.lock:
                    api.refused += 1
                return self._answer(503, {"ok": False, "error": "service_unavailable"})
            if self.headers.get("authorization") != f"Bearer {TOKEN}":
                with api.lock:
                    api.refused += 1
                return self._answer(200, {"ok": False, "error": "invalid_auth"})
            if "json" in (self.headers.get("content-type") or ""):
                body = json.loads(raw)
            else:
                body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                if isinstance(body.get("blocks"), str):
                    body["blocks"] = json.loads(body["blocks"])
            with api.lock:
                error = _problem(method, body, api)
                if error is not None:
                    api.refused += 1
                    return self._answer(200, {"ok": False, "error": error})
                api.calls.append(Call(method, body, time.time()))
                answer = self._accept(method, body, api)
            self._answer(200, answer)

        def _accept(self, method: str, body: dict[str, Any], api: SlackApi) -> dict[str, Any]:
            channel = body["channel"]
            if channel.startswith(("U", "W")):  # a DM: Slack answers with the DM's own id
                channel = "D" + channel[1:]
            if method == "chat.postEphemeral":
                return {"ok": True, "message_ts": f"{time.time():.6f}"}
            ts = body.get("ts") or f"1700000000.{next(stamps):06d}"
            api.messages[(channel, ts)] = body
            return {"ok": True, "channel": channel, "ts": ts}

        def _answer(self, status: int, data: dict[str, Any]) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json; charset=utf-8")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: object) -> None:
            pass

    with serving(Handler) as port:
        api = SlackApi(f"http://127.0.0.1:{port}/api/")
        yield api
