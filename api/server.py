"""How `intervene api` serves the app: uvicorn's options, and its HTTP protocol answering a
request it cannot parse in the contract's envelope.

A request line with a byte outside ASCII (`GET /caf\\xc3\\xa9`) is not HTTP (RFC 9112: a
request target is ASCII; anything else is percent-encoded). llhttp, under uvicorn's httptools
protocol, refuses it ("Invalid char in url path") as h11 would ("illegal request line"), while
parsing, before an ASGI scope exists: neither the app nor any middleware ever sees it, and
uvicorn answers a text/plain 400 itself. `EnvelopeHttpTools` answers that 400 in the envelope
instead. A percent-encoded URL that is not UTF-8 once decoded does reach the app; the Gate
refuses it (api/middleware.py).
"""

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.errors import envelope_bytes
from api.headers import API_CSP, NO_STORE, SECURITY_HEADERS

MALFORMED = (
    "Malformed HTTP request: the request line or a header is not valid HTTP/1.1 (a URL is ASCII;"
    " send anything else percent-encoded as UTF-8)"
)


class EnvelopeHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol; a request it cannot parse gets the envelope."""

    def send_400_response(self, msg: str) -> None:
        body = envelope_bytes("bad_request", MALFORMED)
        headers = [
            *self.server_state.default_headers,  # date, server, as on every answer
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *SECURITY_HEADERS,
            API_CSP,
            NO_STORE,
        ]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(b"HTTP/1.1 400 Bad Request\r\n" + head + b"\r\n" + body)
        self.transport.close()


def uvicorn_options(
    host: str, port: int, log_config: dict[str, Any], workers: int
) -> dict[str, Any]:
    """`uvicorn.run`'s keyword arguments for the app factory."""
    return {
        "app": "api.main:create_app",
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "http": EnvelopeHttpTools,
        # X-Forwarded-For is the Gate's to read, from INTERVENE_TRUSTED_PROXIES only
        # (api/middleware.py): uvicorn's own handling trusts 127.0.0.1 by default and would
        # rewrite the client's address before the Gate sees it
        "proxy_headers": False,
        "log_config": log_config,
    }
