"""The incident lifecycle table of docs/interventions.md, read from `TRANSITIONS` (the state
machine's whole rule book) so the guide cannot promise a move the API refuses."""

from models.enums import IncidentStatus
from models.incident import CHANGE_OF, TRANSITIONS


def render_transitions() -> str:
    lines = [
        "| verb | allowed from | leads to | request | `change` in its event |",
        "|---|---|---|---|---|",
    ]
    for verb, (sources, target) in TRANSITIONS.items():
        allowed = ", ".join(f"`{s.value}`" for s in IncidentStatus if s in sources)
        leads_to = f"`{target.value}`" if target else "unchanged"
        lines.append(
            f"| {verb.value} | {allowed} | {leads_to}"
            f" | `POST /api/incidents/{{id}}/{verb.value}` | `{CHANGE_OF[verb]}` |"
        )
    return "\n".join(lines) + "\n"
