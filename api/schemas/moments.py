"""An instant in a query string (`?since=`, `?at=`): ISO 8601 only, UTC when it has no offset."""

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator, BeforeValidator


def _utc(moment: datetime) -> datetime:
    """A time without an offset is UTC (the audit log's own times are)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso(value: object) -> object:
    """Only what the schema promises (a date-time): pydantic alone reads `0.5` as Unix time."""
    if isinstance(value, str) and not _ISO_DATE_TIME.match(value):
        raise ValueError("expected an ISO 8601 date-time, such as 2026-01-31T09:00:00Z")
    return value


Moment = Annotated[datetime, BeforeValidator(_iso), AfterValidator(_utc)]
When = Query(description="An ISO 8601 date-time; without an offset, UTC")
