"""Reading JSON columns: every listed incident carries three documents (details, metadata,
playbooks), so `json.loads` and its checks ran 150 times per page (bench/incidents_api.py).

`loads` hands the text straight to the C scanner that `json.loads` ends in. The database
wrote these documents itself (jsonb output, or SQLAlchemy's `json.dumps` on SQLite), so they
are UTF-8 and start at their first character; anything else (leading or trailing text, bad
JSON) goes through `json.loads` and gets its usual result or error.
"""

import json
from collections.abc import Callable
from json.scanner import make_scanner
from typing import Any, cast

# typeshed types the scanner's argument as the scanner itself; it is the decoder.
_scan: Callable[[str, int], tuple[Any, int]] = make_scanner(cast(Any, json.JSONDecoder()))


def loads(document: str | bytes) -> Any:
    """The value of one JSON document read from a column; the same as `json.loads`."""
    text = document if isinstance(document, str) else bytes(document).decode()
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)
