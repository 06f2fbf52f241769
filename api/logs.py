"""Log lines: one JSON object each (INTERVENE_LOG_FORMAT=text for a terminal), carrying the id of
the request they were written for, and never a token.

The request id: asgi-correlation-id's middleware (outermost, api/main.py) takes the client's
X-Request-ID when it is valid (`valid_request_id`), makes one otherwise, keeps it in a context
variable for the rest of the request (the route, the Gate's audit entry, uvicorn's access line)
and returns it as X-Request-ID on the answer. `RequestIdFilter` copies it onto every record.

The same configuration serves our loggers and uvicorn's (`log_config` is handed to uvicorn, which
applies it in every worker process), so access lines are JSON too and pass `RedactTokens`.
"""

import logging
import logging.config
import re
from typing import Any, Literal
from uuid import uuid4

import prefect.main  # noqa: F401  (see below)
from asgi_correlation_id import correlation_id

# Importing Prefect's flow machinery (prefect.main) configures logging, uvicorn's loggers
# included (WARNING, a handler of its own), replacing what was there before: it is imported
# above, before ours is applied, in every process (uvicorn's workers import this module to read
# the configuration they are handed), so that ours wins.

REQUEST_ID_HEADER = "X-Request-ID"
# visible ASCII only (no spaces or control characters to forge log lines with), at most the 64
# characters the audit log keeps
_VALID_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,64}")


def valid_request_id(value: str) -> bool:
    return _VALID_REQUEST_ID.fullmatch(value) is not None


def new_request_id() -> str:
    return uuid4().hex


class RequestIdFilter(logging.Filter):
    """`record.request_id`: the id of the request being handled (None outside one)."""

    def __init__(self, name: str = "", default: str | None = None) -> None:
        super().__init__(name)
        self.default = default

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = correlation_id.get() or self.default
        return True


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(request_id)s"
JSON_NAMES = {"levelname": "level", "name": "logger"}


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.core import RESERVED_ATTRS
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        JSON_FIELDS,
        rename_fields=JSON_NAMES,
        timestamp="time",
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's, with terminal colours
    )


def log_config(log_format: Literal["json", "text"], level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for the root logger and uvicorn's: one stderr handler
    that stamps the request id and masks tokens."""
    formatter: dict[str, Any] = (
        {"()": json_formatter} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": RequestIdFilter, "default": None if log_format == "json" else "-"},
            "redact_tokens": {"()": "api.auth.RedactTokens"},
        },
        "formatters": {"default": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id", "redact_tokens"],
            }
        },
        "root": {"level": level, "handlers": ["console"]},
        "loggers": {
            # uvicorn's own configuration would give them handlers of their own: through ours
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": level, "handlers": [], "propagate": True},
            "httpx": {"level": "WARNING"},  # one line per Prefect API call
        },
    }


def configure_logging(log_format: Literal["json", "text"]) -> dict[str, Any]:
    """Apply the configuration to this process; returns it (for uvicorn's workers)."""
    config = log_config(log_format)
    logging.config.dictConfig(config)
    return config
