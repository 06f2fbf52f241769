"""Every (status, verb) pair of the state machine, through the API, against the table."""

import pytest
from httpx import AsyncClient

from models.enums import IncidentStatus, Verb
from models.incident import TRANSITIONS
from tests.factories import apply_verb, create_incident_in

PAIRS = [(status.value, verb.value) for status in IncidentStatus for verb in Verb]


@pytest.mark.parametrize(("status", "verb"), PAIRS)
async def test_transition_table_is_what_the_api_does(
    client: AsyncClient, status: str, verb: str
) -> None:
    incident = await create_incident_in(client, status)
    allowed_from, target = TRANSITIONS[Verb(verb)]
    before = (await client.get(f"/api/incidents/{incident['id']}")).json()

    response = await apply_verb(client, incident["id"], verb)

    stored = (await client.get(f"/api/incidents/{incident['id']}")).json()
    if IncidentStatus(status) in allowed_from:
        assert response.status_code == 200, response.text
        assert stored["status"] == (target.value if target else status)
    else:
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "bad_request"
        assert status in error["message"]
        assert verb in error["message"]
        assert error["details"]["current_status"] == status
        assert error["details"]["allowed_from"] == sorted(s.value for s in allowed_from)
        assert stored == before  # a refused verb changes nothing, not even updated_at


def test_the_table_matches_the_documented_lifecycle() -> None:
    s = IncidentStatus
    assert {verb: (set(src), dst) for verb, (src, dst) in TRANSITIONS.items()} == {
        Verb.ACKNOWLEDGE: ({s.OPEN}, s.ACKNOWLEDGED),
        Verb.MITIGATE: ({s.OPEN, s.ACKNOWLEDGED}, s.MITIGATED),
        Verb.RESOLVE: ({s.OPEN, s.ACKNOWLEDGED, s.MITIGATED}, s.RESOLVED),
        Verb.CLOSE: ({s.RESOLVED}, s.CLOSED),
        Verb.REOPEN: ({s.RESOLVED}, s.OPEN),
        Verb.ASSIGN: ({s.OPEN, s.ACKNOWLEDGED, s.MITIGATED, s.RESOLVED}, None),
    }
