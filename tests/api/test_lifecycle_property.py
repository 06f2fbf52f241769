"""Random sequences of verbs against a model of the lifecycle, through the real app."""

from typing import Any

from httpx import AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import apply_verb, create_incident

# The model: written out independently of models.incident.TRANSITIONS.
NEXT: dict[tuple[str, str], str] = {
    ("open", "acknowledge"): "acknowledged",
    ("open", "mitigate"): "mitigated",
    ("acknowledged", "mitigate"): "mitigated",
    ("open", "resolve"): "resolved",
    ("acknowledged", "resolve"): "resolved",
    ("mitigated", "resolve"): "resolved",
    ("resolved", "close"): "closed",
    ("resolved", "reopen"): "open",
}
VERBS = ["acknowledge", "mitigate", "resolve", "close", "reopen", "assign"]


def expected(status: str, verb: str) -> str | None:
    """The status after `verb`, or None when the verb must be refused."""
    if verb == "assign":
        return None if status == "closed" else status
    return NEXT.get((status, verb))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(verbs=st.lists(st.sampled_from(VERBS), min_size=1, max_size=12))
async def test_random_verb_sequences_follow_the_model(
    client: AsyncClient, verbs: list[str]
) -> None:
    incident = await create_incident(client)
    status, reopens, stamps = "open", 0, 0
    for verb in verbs:
        response = await apply_verb(client, incident["id"], verb)
        after = expected(status, verb)
        if after is None:
            assert response.status_code == 400, (status, verb, response.text)
            continue
        assert response.status_code == 200, (status, verb, response.text)
        reopens += verb == "reopen"
        stamps += 1
        status = after

    stored: dict[str, Any] = (await client.get(f"/api/incidents/{incident['id']}")).json()
    assert stored["status"] == status
    assert stored["reopen_count"] == reopens
    assert (stored["closed_at"] is not None) == (status == "closed")
    timeline = (await client.get(f"/api/incidents/{incident['id']}/timeline")).json()["entries"]
    assert len(timeline) == 1 + stamps  # "create" plus one row per accepted verb
