"""The Webhooks API: admin only, targets validated, secrets shown once, deliveries listed.
Delivery itself is tested in tests/deployments/test_webhooks.py."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient

from api.main import create_app
from models.enums import Role
from models.settings import Settings
from tests.auth import bearer, issue
from tests.fakes import RecordingLauncher

HOOK = {"url": "http://127.0.0.1:9/hook", "event_types": ["incident_created"]}


@pytest.fixture
async def no_private(
    settings: Settings, recording_launcher: RecordingLauncher, client: AsyncClient
) -> AsyncIterator[AsyncClient]:
    """The production default: private and loopback targets refused."""
    app = create_app(settings.model_copy(update={"webhook_allow_private": False}),
                     launcher=recording_launcher)  # fmt: skip
    async with app.router.lifespan_context(app):
        secret = await issue(app.state.db)
        transport = ASGITransport(app=app)
        async with AsyncClient(
            transport=transport, base_url="http://t", headers=bearer(secret)
        ) as http:
            yield http


async def test_a_subscription_shows_its_secret_once(client: AsyncClient) -> None:
    created = await client.post("/api/webhooks", json=HOOK | {"description": "pager bridge"})

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["secret"].startswith(body["secret_prefix"])
    assert (body["enabled"], body["event_types"], body["created_by"]) == (
        True, ["incident_created"], "lead@x.io",
    )  # fmt: skip
    assert body["deliveries"] == {"pending": 0, "succeeded": 0, "failed": 0}
    listed = (await client.get("/api/webhooks")).json()["webhooks"]
    one = (await client.get(f"/api/webhooks/{body['id']}")).json()
    assert [h["id"] for h in listed] == [body["id"]]
    for shown in (listed[0], one):
        assert "secret" not in shown
        assert body["secret"] not in str(shown)


async def test_a_given_secret_is_kept_and_must_be_long_enough(client: AsyncClient) -> None:
    short = await client.post("/api/webhooks", json=HOOK | {"secret": "short"})
    given = await client.post("/api/webhooks", json=HOOK | {"secret": "s" * 32})

    assert short.status_code == 422
    assert given.json()["secret"] == "s" * 32


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (HOOK | {"url": "ftp://example.com/hook"}, "body.url"),
        (HOOK | {"url": "not a url"}, "body.url"),
        (HOOK | {"event_types": []}, "body.event_types"),
        (HOOK | {"event_types": ["heartbeat"]}, "body.event_types.0"),
        (HOOK | {"severities": ["sev9"]}, "body.severities.0"),
        (HOOK | {"kinds": ["weather"]}, "body.kinds.0"),
        (HOOK | {"colour": "blue"}, "body.colour"),
        (HOOK | {"url": "http://169.254.169.254/latest/meta-data"}, "body.url"),
        (HOOK | {"url": "http://[fe80::1]/hook"}, "body.url"),
        (HOOK | {"url": "http://0.0.0.0/hook"}, "body.url"),
        (HOOK | {"url": "http://user:pw@127.0.0.1/hook"}, "body.url"),
        (HOOK | {"url": "http://no-such-host.invalid/hook"}, "body.url"),
    ],
)
async def test_bad_subscriptions_are_422_naming_the_field(
    client: AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/webhooks", json=body)

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [e["field"] for e in error["details"]["errors"]]
    assert (await client.get("/api/webhooks")).json()["webhooks"] == []


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://192.168.0.10/hook",
     "http://[::1]/hook", "http://[::ffff:169.254.169.254]/hook"],
)  # fmt: skip
async def test_private_targets_are_refused_unless_allowed(
    no_private: AsyncClient, client: AsyncClient, url: str
) -> None:
    refused = await no_private.post("/api/webhooks", json=HOOK | {"url": url})

    assert refused.status_code == 422
    assert "Target refused" in refused.json()["error"]["message"] + str(refused.json())
    if "169.254" not in url:  # link-local stays refused even on-prem
        assert (await client.post("/api/webhooks", json=HOOK | {"url": url})).status_code == 201


# Teredo: 2001:0:<server>:<flags>:<port ^ ffff>:<client ^ ffffffff>; this client is 169.254.169.254
TEREDO_TO_METADATA = "2001:0:4136:e378:8000:63bf:5601:5601"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://[2002:a9fe:a9fe::1]/hook", "6to4 for 169.254.169.254"),
        ("http://[2002:7f00:1::1]/hook", "6to4 for 127.0.0.1"),
        (f"http://[{TEREDO_TO_METADATA}]/hook", "Teredo (client) for 169.254.169.254"),
        ("http://[64:ff9b::a9fe:a9fe]/hook", "NAT64 for 169.254.169.254"),
        ("http://[64:ff9b::a00:1]/hook", "NAT64 for 10.0.0.1"),
        ("http://[::ffff:0:a9fe:a9fe]/hook", "IPv4-translated for 169.254.169.254"),
        ("http://[::169.254.169.254]/hook", "IPv4-compatible for 169.254.169.254"),
        ("http://100.64.0.1/hook", "private"),  # carrier-grade NAT
        ("http://[fec0::1]/hook", "private"),  # site-local
    ],
)
async def test_addresses_that_stand_for_a_refused_one_are_refused(
    no_private: AsyncClient, url: str, why: str
) -> None:
    refused = await no_private.post("/api/webhooks", json=HOOK | {"url": url})

    assert refused.status_code == 422
    (error,) = refused.json()["error"]["details"]["errors"]
    assert error["field"] == "body.url"
    assert why in error["message"]
    assert (await no_private.get("/api/webhooks")).json()["webhooks"] == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://0.1.2.3/hook", "this network"),
        ("http://0.0.0.0:8080/hook", "this network"),
        ("http://255.255.255.255/hook", "broadcast"),
        ("http://[2002:a9fe:a9fe::1]/hook", "6to4 for 169.254.169.254"),
        (f"http://[{TEREDO_TO_METADATA}]/hook", "Teredo (client) for 169.254.169.254"),
        ("http://[64:ff9b:1::a9fe:a9fe]/hook", "local-use NAT64"),
        ("http://[::ffff:0:7f00:1]/hook", "reserved"),
    ],
)
async def test_what_reaches_no_on_prem_host_is_refused_with_private_targets_allowed(
    client: AsyncClient, url: str, why: str
) -> None:
    refused = await client.post("/api/webhooks", json=HOOK | {"url": url})

    assert refused.status_code == 422
    assert why in refused.json()["error"]["details"]["errors"][0]["message"]


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:8.8.8.8]/hook",
        "http://[64:ff9b::808:808]/hook",
        "http://[2002:808:808::1]/hook",
    ],
)
async def test_other_spellings_of_a_public_address_are_accepted(
    no_private: AsyncClient, url: str
) -> None:
    assert (await no_private.post("/api/webhooks", json=HOOK | {"url": url})).status_code == 201


async def test_only_admins_manage_webhooks(
    as_role: Callable[[str, Role], Awaitable[AsyncClient]],
) -> None:
    approver = await as_role("ann@x.io", Role.APPROVER)
    admin = await as_role("root@x.io", Role.ADMIN)
    hook = (await admin.post("/api/webhooks", json=HOOK)).json()

    attempts = [
        await approver.post("/api/webhooks", json=HOOK),
        await approver.get("/api/webhooks"),
        await approver.get(f"/api/webhooks/{hook['id']}"),
        await approver.get(f"/api/webhooks/{hook['id']}/deliveries"),
        await approver.delete(f"/api/webhooks/{hook['id']}"),
    ]

    assert [r.status_code for r in attempts] == [403] * 5
    assert all(r.json()["error"]["details"]["required_role"] == "admin" for r in attempts)


async def test_a_deleted_subscription_is_gone(client: AsyncClient) -> None:
    hook = (await client.post("/api/webhooks", json=HOOK)).json()

    deleted = await client.delete(f"/api/webhooks/{hook['id']}")
    again = await client.delete(f"/api/webhooks/{hook['id']}")

    assert deleted.status_code == 204
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "not_found"
    assert (await client.get(f"/api/webhooks/{hook['id']}")).status_code == 404
    assert (await client.get("/api/webhooks")).json()["webhooks"] == []


async def test_unknown_ids_are_404_in_the_envelope(client: AsyncClient) -> None:
    hook = (await client.post("/api/webhooks", json=HOOK)).json()

    responses = [
        await client.get("/api/webhooks/999999"),
        await client.get("/api/webhooks/999999/deliveries"),
        await client.post("/api/webhooks/999999/enable"),
        await client.post(f"/api/webhooks/{hook['id']}/deliveries/999999/redeliver"),
    ]

    assert [r.status_code for r in responses] == [404] * 4
    assert {r.json()["error"]["code"] for r in responses} == {"not_found"}


async def test_a_subscription_starts_at_the_newest_event(client: AsyncClient) -> None:
    await client.post("/api/incidents", json={"kind": "invariant", "key": "INV_before_hook",
                                              "severity": "sev3", "summary": "older"})  # fmt: skip

    hook = (await client.post("/api/webhooks", json=HOOK)).json()

    assert hook["position"] >= 1  # the older event is not delivered to it
    deliveries = await client.get(f"/api/webhooks/{hook['id']}/deliveries", params={"limit": 5})
    assert deliveries.json() == {"webhook_id": hook["id"], "deliveries": []}
    bad = await client.get(f"/api/webhooks/{hook['id']}/deliveries", params={"status": "lost"})
    assert bad.status_code == 422
