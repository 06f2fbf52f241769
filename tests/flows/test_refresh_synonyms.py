"""refresh_synonyms with the official client against a local server answering as Elasticsearch."""

import json
import re
from typing import Any

import pytest
from httpx import AsyncClient
from pytest_httpserver import HTTPServer

from flows import refresh_synonyms
from models.base import utcnow
from models.db import Database, transaction
from models.enums import ActionStatus
from models.services.actions import advance_action
from tests.factories import create_incident
from tests.fakes import RecordingLauncher

HEADERS = {"X-Elastic-Product": "Elasticsearch"}
TYPE = "application/vnd.elasticsearch+json;compatible-with=9"
CONCRETE = "products-000001"
OLD_RULES = [{"id": "r1", "synonyms": "tv, television"}]


def answer(server: HTTPServer, uri: Any, method: str, body: dict[str, Any] | None = None,
           status: int = 200) -> None:  # fmt: skip
    server.expect_request(uri, method=method).respond_with_data(
        json.dumps(body) if body is not None else "", status=status, headers=HEADERS,
        content_type=TYPE,
    )  # fmt: skip


@pytest.fixture
def cluster(httpserver: HTTPServer) -> HTTPServer:
    answer(httpserver, "/products", "HEAD")
    answer(
        httpserver,
        "/products/_settings",
        "GET",
        {
            CONCRETE: {
                "settings": {
                    "index": {
                        "analysis": {
                            "filter": {
                                "syn": {
                                    "type": "synonym_graph",
                                    "updateable": True,
                                    "synonyms_set": "product-synonyms",
                                }
                            }
                        }
                    }
                }
            }
        },
    )
    answer(
        httpserver,
        "/products/_stats/docs,store",
        "GET",
        {"_all": {"primaries": {"docs": {"count": 12000}, "store": {"size_in_bytes": 5e6}}}},
    )
    answer(httpserver, "/_alias/products", "HEAD")
    answer(httpserver, "/_alias/products", "GET", {CONCRETE: {"aliases": {"products": {}}}})
    answer(httpserver, "/_synonyms/product-synonyms", "GET",
           {"count": 1, "synonyms_set": OLD_RULES})  # fmt: skip
    answer(httpserver, "/_synonyms/product-synonyms", "PUT", {"result": "updated"})
    answer(
        httpserver,
        "/products/_reload_search_analyzers",
        "POST",
        {"_shards": {"total": 1, "successful": 1, "failed": 0}, "reload_details": []},
    )
    answer(httpserver, f"/{CONCRETE}", "GET", {CONCRETE: {
        "settings": {"index": {"number_of_shards": "1", "number_of_replicas": "0", "uuid": "u",
                               "analysis": {"filter": {}}}},
        "mappings": {"properties": {"name": {"type": "text"}}}, "aliases": {}}})  # fmt: skip
    answer(httpserver, re.compile(rf"^/{CONCRETE}--\d+$"), "PUT", {"acknowledged": True})
    answer(httpserver, "/_reindex", "POST", {"total": 12000, "created": 12000})
    answer(httpserver, "/_aliases", "POST", {"acknowledged": True})
    return httpserver


PARAMS = {"index_name": "products", "synonyms": ["tv, television, telly", "ny => new york"]}


def requests_to(server: HTTPServer, method: str, path_pattern: str) -> list[Any]:
    return [r for r, _ in server.log if r.method == method and re.fullmatch(path_pattern, r.path)]


async def test_dry_run_finds_the_set_and_sizes_a_reindex(
    es_client: AsyncClient, cluster: HTTPServer
) -> None:
    incident = await create_incident(es_client, kind="budget")
    url = f"/api/playbooks/incidents/{incident['id']}/actions/dry-run"

    plain = (
        await es_client.post(url, json={"action_type": "refresh_synonyms", "params": PARAMS})
    ).json()
    reindex = (
        await es_client.post(
            url, json={"action_type": "refresh_synonyms", "params": PARAMS | {"reindex": True}}
        )
    ).json()

    assert plain["status"] == "dry_run_success"
    assert plain["details"]["synonyms_set"] == "product-synonyms"
    assert plain["requires_approval"] is False
    assert plain["estimated_duration"] == 5
    assert reindex["requires_approval"] is True
    assert reindex["estimated_duration"] == 5 + 12000 // 2000  # from the index's size
    assert any("Reindex 12000 document(s) (5.0 MB) of products-000001" in c
               for c in reindex["changes"])  # fmt: skip
    assert not requests_to(cluster, "PUT", r"/_synonyms/.*")  # a dry-run changes nothing


async def test_execute_replaces_the_rules_and_its_rollback_restores_them(
    es_client: AsyncClient, cluster: HTTPServer, recording_launcher: RecordingLauncher,
    db: Database, flow_env: None,
) -> None:  # fmt: skip
    incident = await create_incident(es_client, kind="budget")
    base = f"/api/playbooks/incidents/{incident['id']}/actions"
    started = (await es_client.post(f"{base}/execute", json={
        "action_type": "refresh_synonyms", "params": PARAMS})).json()  # fmt: skip

    result = await refresh_synonyms.refresh_synonyms.fn(
        **recording_launcher.launches[-1].parameters
    )
    async with transaction(db.writer) as session:
        for status in (ActionStatus.RUNNING, ActionStatus.SUCCESS):
            await advance_action(session, action_id=started["action_id"], status=status,
                                 at=utcnow())  # fmt: skip
    undo = await es_client.post(f"{base}/{started['action_id']}/rollback", json={})
    await refresh_synonyms.refresh_synonyms.fn(**recording_launcher.launches[-1].parameters)

    puts = requests_to(cluster, "PUT", r"/_synonyms/product-synonyms")
    assert [json.loads(r.data)["synonyms_set"] for r in puts] == [
        [{"id": "r1", "synonyms": "tv, television, telly"},
         {"id": "r2", "synonyms": "ny => new york"}],
        OLD_RULES,
    ]  # fmt: skip
    assert len(requests_to(cluster, "POST", r"/products/_reload_search_analyzers")) == 2
    assert result["prior_state"] == {"synonyms_set": "product-synonyms", "rules": OLD_RULES}
    assert undo.status_code == 200
    assert not requests_to(cluster, "POST", r"/_reindex")


async def test_reindex_copies_into_a_new_index_and_moves_the_alias(
    es_client: AsyncClient, cluster: HTTPServer, recording_launcher: RecordingLauncher,
    flow_env: None,
) -> None:  # fmt: skip
    incident = await create_incident(es_client, kind="budget")
    url = f"/api/playbooks/incidents/{incident['id']}/actions/execute"
    body = {"action_type": "refresh_synonyms", "params": PARAMS | {"reindex": True}}

    refused = await es_client.post(url, json=body)
    await es_client.post(url, json=body | {"approved_by": "lead@x.io"})
    result = await refresh_synonyms.refresh_synonyms.fn(
        **recording_launcher.launches[-1].parameters
    )

    assert refused.status_code == 403
    target = result["reindexed_into"]
    assert re.fullmatch(rf"{CONCRETE}--\d+", target)
    created = json.loads(requests_to(cluster, "PUT", rf"/{target}")[0].data)
    assert created["mappings"] == {"properties": {"name": {"type": "text"}}}
    assert "uuid" not in created["settings"]
    reindex = json.loads(requests_to(cluster, "POST", r"/_reindex")[0].data)
    assert reindex == {"source": {"index": CONCRETE}, "dest": {"index": target}}
    swap = json.loads(requests_to(cluster, "POST", r"/_aliases")[0].data)
    assert swap["actions"] == [{"remove": {"index": CONCRETE, "alias": "products"}},
                               {"add": {"index": target, "alias": "products"}}]  # fmt: skip


async def test_reindex_needs_an_alias(es_client: AsyncClient, httpserver: HTTPServer) -> None:
    answer(httpserver, "/products", "HEAD")
    answer(httpserver, "/products/_settings", "GET", {"products": {"settings": {"index": {}}}})
    answer(httpserver, "/products/_stats/docs,store", "GET", {"_all": {"primaries": {}}})
    answer(httpserver, "/_alias/products", "HEAD", status=404)
    incident = await create_incident(es_client, kind="budget")

    body = (await es_client.post(
        f"/api/playbooks/incidents/{incident['id']}/actions/dry-run",
        json={"action_type": "refresh_synonyms",
              "params": PARAMS | {"reindex": True, "synonyms_set": "s"}},
    )).json()  # fmt: skip

    assert body["status"] == "dry_run_failed"
    assert "needs 'products' to be an alias" in body["message"]


async def test_a_reindex_with_failures_never_moves_the_alias(
    es_client: AsyncClient, cluster: HTTPServer, recording_launcher: RecordingLauncher,
    flow_env: None,
) -> None:  # fmt: skip
    cluster.expect_oneshot_request("/_reindex", method="POST").respond_with_data(
        json.dumps({"total": 12000, "failures": [{"id": "7", "cause": {"type": "mapper"}}]}),
        headers=HEADERS, content_type=TYPE,
    )  # fmt: skip
    incident = await create_incident(es_client, kind="budget")
    await es_client.post(
        f"/api/playbooks/incidents/{incident['id']}/actions/execute",
        json={"action_type": "refresh_synonyms", "params": PARAMS | {"reindex": True},
              "approved_by": "lead@x.io"},
    )  # fmt: skip

    with pytest.raises(refresh_synonyms.ActionFailed, match="1 failure"):
        await refresh_synonyms.refresh_synonyms.fn(**recording_launcher.launches[-1].parameters)

    assert not requests_to(cluster, "POST", r"/_aliases")
