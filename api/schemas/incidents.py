"""Request and response bodies of the Incidents API, field for field as the contract shows."""

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from operator import itemgetter
from typing import Annotated, Any, cast

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SkipValidation,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
)
from typing_extensions import TypedDict  # pydantic needs it before Python 3.12

from models.enums import IncidentKind, IncidentStatus, Severity, SlaState
from models.incident import Incident
from models.sla import STAMPS, SlaPlan, sla_document

_SURROGATE = re.compile("[\ud800-\udfff]")


def _text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text: NUL (PostgreSQL refuses it), or half a surrogate
    pair, which JSON can escape ("\\ud800") but which is not Unicode (no UTF-8 encodes it)."""
    if "\x00" in value:
        return "NUL characters are not accepted"
    if (found := _SURROGATE.search(value)) is not None:
        return f"a lone surrogate ({ascii(found.group())[1:-1]}) is not valid Unicode"
    return None


def _storable(value: str) -> str:
    """Text is stored as given, except what `_text_problem` refuses (422)."""
    if (problem := _text_problem(value)) is not None:
        raise ValueError(problem)
    return value


Text = AfterValidator(_storable)
Person = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320), Text
]
Notes = Annotated[str, StringConstraints(max_length=10_000), Text]
Key = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[\w.:/@-]+$"),
]
Playbook = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^\w+$")
]


MAX_JSON_DEPTH = 10
MAX_JSON_BYTES = 64 * 1024
MAX_JSON_KEY = 200


def _bounded(value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    """Free-form JSON (details, metadata, params), accepted but bounded in depth, key length
    and size, so a body under the request cap still cannot bloat every later read; its text,
    keys included, must be storable (`_text_problem`, which says where)."""

    def storable(text: str, where: str, what: str) -> None:
        if (problem := _text_problem(text)) is not None:
            raise ValueError(f"{problem}: in {what} at {where}")

    def walk(node: Any, depth: int, where: str) -> None:
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(node, str):
            storable(node, where, "a value")
        elif isinstance(node, float) and not math.isfinite(node):
            raise ValueError("NaN and Infinity are not JSON")
        elif isinstance(node, dict):
            for key, child in node.items():
                if len(key) > MAX_JSON_KEY:
                    raise ValueError(f"a key is longer than {MAX_JSON_KEY} characters")
                storable(key, where, "a key")
                walk(child, depth + 1, f"{where}.{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, depth + 1, f"{where}.{index}")

    walk(value, 1, info.field_name or "the object")
    if len(json.dumps(value, separators=(",", ":"))) > MAX_JSON_BYTES:
        raise ValueError(f"larger than {MAX_JSON_BYTES} bytes once serialized")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_bounded)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlaTimerRead(TypedDict):
    target_seconds: int
    due_at: datetime
    state: SlaState
    done_at: datetime | None
    breached_at: datetime | None


class SlaRead(TypedDict):
    """Each timer as of the response; null where the severity sets no target."""

    acknowledge: SlaTimerRead | None
    mitigate: SlaTimerRead | None
    resolve: SlaTimerRead | None


_stage_times = itemgetter(*STAMPS)


class SlaClock:
    """What an incident's `sla` depends on besides the row: the targets and the time."""

    def __init__(self, plans: dict[Severity, SlaPlan], now: datetime) -> None:
        self.plans, self.now = plans, now  # plans: models.sla.plans(targets), once per app

    def sla(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The `sla` document of an incident's row (`Incident.as_row`)."""
        stamps: tuple[datetime | None, ...] = _stage_times(row)
        return sla_document(row["created_at"], stamps, self.plans[row["severity"]], self.now)


class IncidentRead(BaseModel):
    id: int
    kind: IncidentKind
    key: str
    severity: Severity
    status: IncidentStatus
    summary: str
    details: dict[str, Any]
    playbooks: list[str]
    issue_url: str | None
    metadata: dict[str, Any] = Field(validation_alias="metadata_")
    assigned_to: str | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    occurrence_count: int
    reopen_count: int
    last_seen_at: datetime
    # Computed by `SlaClock.sla`, not sent by a client: not validated again (a list builds
    # fifty), only serialized by this shape.
    sla: Annotated[SlaRead, SkipValidation]

    @classmethod
    def of(cls, incident: Incident, clock: SlaClock) -> "IncidentRead":
        row = incident.as_row()
        row["sla"] = clock.sla(row)
        return cls.model_validate(row)


class IncidentList(BaseModel):
    incidents: list[IncidentRead]
    total: int
    limit: int
    offset: int


# The list's answer written straight from its rows: IncidentList's JSON with no model built
# and validated per row (a page of fifty is the API's busiest read; bench/incidents_api.py).
# The shapes are IncidentRead's own fields, so the two cannot drift; tests/api compares them.
_IncidentDoc: Any = TypedDict(  # type: ignore[misc]  # built from the model's fields
    "_IncidentDoc", {name: field.annotation for name, field in IncidentRead.model_fields.items()}
)


class _ListDoc(TypedDict):
    incidents: list[_IncidentDoc]
    total: int
    limit: int
    offset: int


_LIST_JSON = TypeAdapter(_ListDoc)


# IncidentRead's fields but `sla`, in its order, and the row keys they come from.
_COLUMNS = tuple(name for name in IncidentRead.model_fields if name != "sla")
_pick_columns = itemgetter(
    *(IncidentRead.model_fields[name].validation_alias or name for name in _COLUMNS)
)


def incident_list_json(
    rows: list[dict[str, Any]], clock: SlaClock, *, total: int, limit: int, offset: int
) -> bytes:
    """IncidentList's JSON from listed rows (`Incident.as_row` keys), each incident's keys in
    the order reading it gives them."""
    docs = []
    for row in rows:
        doc = dict(zip(_COLUMNS, _pick_columns(row), strict=True))
        doc["sla"] = clock.sla(row)
        docs.append(doc)
    page = _ListDoc(incidents=cast(Any, docs), total=total, limit=limit, offset=offset)
    return _LIST_JSON.dump_json(page)


class IncidentCounts(BaseModel):
    by_status: dict[IncidentStatus, int]
    total: int


class IncidentCreate(Body):
    """An external alert. A repeat while the same (kind, key) is active counts an occurrence."""

    kind: IncidentKind
    key: Key
    severity: Severity
    summary: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), Text
    ]
    details: JsonObject = Field(default_factory=dict)
    playbooks: list[Playbook] = Field(default_factory=list, max_length=20)
    issue_url: AnyHttpUrl | None = None
    metadata: JsonObject = Field(default_factory=dict)
    reported_by: Person = "api"


class AcknowledgeRequest(Body):
    """`acknowledged_by` left out names the caller's token (an addition to the contract)."""

    acknowledged_by: Person = "api"
    notes: Notes | None = None


class AcknowledgeResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: IncidentStatus
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    updated_at: datetime


class NotesRequest(Body):
    """Body of mitigate, resolve, close and reopen; `actor` names who did it (default "api")."""

    notes: Notes | None = None
    actor: Person = "api"


class NoteRequest(Body):
    """Body of POST /api/incidents/{id}/notes: the comment, and who writes it (default "api")."""

    notes: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000), Text
    ]
    actor: Person = "api"


class AssignRequest(Body):
    assigned_to: Person | None
    notes: Notes | None = None
    actor: Person = "api"


class TimelineEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    actor: str
    verb: str
    from_status: str | None
    to_status: str | None
    notes: str | None
    at: datetime


class Timeline(BaseModel):
    incident_id: int
    entries: list[TimelineEntryRead]
