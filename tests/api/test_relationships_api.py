"""/api/v1/relationships and /api/v1/assets/{id}/graph (SPEC §7): link, list, filter, page,
read, unlink, the dependency graph, roles, and the audit trail on both assets.

Errors are problem+json: 422 bad field / self-link / unknown or trashed asset, 409 duplicate,
404 unknown relationship or asset, 403 viewer or read-only token writing.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.api.conftest import assert_problem, field_errors
from tests.factories import ACTOR, make_asset
from tests.review_factories import make_run
from webapp.models import Asset, AssetRelationship
from webapp.models.base import utcnow
from webapp.services import assets as asset_service
from webapp.services import relationships

ITEM_FIELDS = {"id", "source_id", "target_id", "kind", "description", "created_at", "created_by",
               "import_run_id", "source", "target"}
NODE_FIELDS = {"id", "name", "engine", "environment", "status", "criticality", "host", "depth",
               "side"}
_age = itertools.count()


def link(session, source: Asset, target: Asset, kind: str = "depends_on",  # type: ignore[no-untyped-def]
         **extra: Any) -> AssetRelationship:
    """A relationship made through the service, each one made later than the last (distinct
    creation times, so "newest first" is the order of making)."""
    rel = relationships.create(session, ACTOR, source_id=source.id, target_id=target.id,
                               kind=kind, **extra)
    rel.created_at = utcnow() - timedelta(hours=1000 - next(_age))
    session.commit()
    return rel


def rel_count(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(AssetRelationship)) or 0


@pytest.fixture
def analyst(make_token):  # type: ignore[no-untyped-def]
    return make_token("analyst", name="linker")


@pytest.fixture
def world(session) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """web depends_on app depends_on orders; orders backs_up_to vault; orders replicates_to
    replica. Reading by dependency: vault ← orders ← app ← web, orders ← replica."""
    a = {name: make_asset(session, name=name)
         for name in ("orders-db", "app-db", "web-db", "vault", "orders-replica")}
    a["app→orders"] = link(session, a["app-db"], a["orders-db"], description="reads orders")
    a["web→app"] = link(session, a["web-db"], a["app-db"])
    a["orders→vault"] = link(session, a["orders-db"], a["vault"], "backs_up_to")
    a["orders→replica"] = link(session, a["orders-db"], a["orders-replica"], "replicates_to")
    return a


def ids(*rels: AssetRelationship) -> list[str]:
    return [str(r.id) for r in rels]


# --- create ---------------------------------------------------------------------------------

def test_create_answers_201_with_location_and_the_item(client, analyst, session, world):
    body = {"source_id": str(world["web-db"].id), "target_id": str(world["orders-db"].id),
            "kind": "feeds", "description": "  nightly ETL "}
    response = client.post("/api/v1/relationships", json=body, headers=analyst.headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    item = response.get_json()
    assert set(item) == ITEM_FIELDS
    assert response.headers["Location"] == f"/api/v1/relationships/{item['id']}"
    assert item["kind"] == "feeds" and item["description"] == "nightly ETL"
    assert item["source"] == {"id": str(world["web-db"].id), "name": "web-db"}
    assert item["target"] == {"id": str(world["orders-db"].id), "name": "orders-db"}
    assert item["created_by"] == str(analyst.user.id) and item["import_run_id"] is None
    stored = session.get(AssetRelationship, uuid.UUID(item["id"]))
    assert (stored.source_id, stored.target_id) == (world["web-db"].id, world["orders-db"].id)
    # the Location answers with the same item
    again = client.get(response.headers["Location"], headers=analyst.headers)
    assert again.status_code == 200 and again.get_json() == item


def test_a_link_made_through_the_api_is_in_both_assets_histories(client, analyst, world):
    source, target = world["vault"], world["web-db"]
    response = client.post("/api/v1/relationships", headers=analyst.headers, json={
        "source_id": str(source.id), "target_id": str(target.id), "kind": "member_of"})
    assert response.status_code == 201
    rel_id = response.get_json()["id"]
    for asset in (source, target):
        newest = client.get(f"/api/v1/assets/{asset.id}/audit?limit=1",
                            headers=analyst.headers).get_json()["items"][0]
        assert newest["action"] == "link"
        assert newest["entity_type"] == "asset" and newest["entity_id"] == str(asset.id)
        assert newest["message"] == "vault is a member of web-db"
        assert newest["actor_id"] == str(analyst.user.id)
        assert newest["actor_label"] == f"{analyst.user.email} (token linker)"
        assert newest["changes"]["relationship"][0] is None
        assert newest["changes"]["relationship"][1]["id"] == rel_id
    assert client.delete(f"/api/v1/relationships/{rel_id}", headers=analyst.headers).status_code == 204
    for asset in (source, target):
        newest = client.get(f"/api/v1/assets/{asset.id}/audit?limit=1",
                            headers=analyst.headers).get_json()["items"][0]
        assert newest["action"] == "unlink"
        assert newest["changes"]["relationship"][0]["id"] == rel_id
        assert newest["changes"]["relationship"][1] is None


def test_duplicate_is_409_and_writes_nothing(client, analyst, session, world, audit_count):
    before, events = rel_count(session), audit_count()
    response = client.post("/api/v1/relationships", headers=analyst.headers, json={
        "source_id": str(world["app-db"].id), "target_id": str(world["orders-db"].id),
        "kind": "depends_on"})
    body = assert_problem(response, 409)
    assert body["detail"] == "“app-db” already depends on “orders-db”."
    assert rel_count(session) == before and audit_count() == events
    # the same pair with another kind is a different link
    other = client.post("/api/v1/relationships", headers=analyst.headers, json={
        "source_id": str(world["app-db"].id), "target_id": str(world["orders-db"].id),
        "kind": "feeds"})
    assert other.status_code == 201


@pytest.mark.parametrize("body, field, message", [
    ("self", "target_id", "An asset cannot be linked to itself."),
    ({"kind": "likes"}, "kind",
     "Choose one of: depends_on, replicates_to, backs_up_to, feeds, member_of."),
    ({"target_id": "00000000-0000-4000-8000-000000000000"}, "target_id", "There is no such asset."),
    ({"source_id": "not-a-uuid"}, "source_id", "Not a valid UUID."),
    ({"target_id": None}, "target_id", "Field may not be null."),
    ({"colour": "red"}, "colour", "Unknown field."),
    ({"description": "x" * 501}, "description", "At most 500 characters."),
    ({"description": 7}, "description", "Not a valid string."),
], ids=["self-link", "bad-kind", "unknown-asset", "not-a-uuid", "null", "unknown-field",
        "long-description", "description-not-text"])
def test_bad_input_is_422_with_field_errors(client, analyst, session, world, audit_count, body,
                                            field, message):
    data = {"source_id": str(world["web-db"].id), "target_id": str(world["vault"].id),
            "kind": "depends_on"}
    if body == "self":
        data["target_id"] = data["source_id"]
    else:
        data.update(body)
    before, events = rel_count(session), audit_count()
    response = client.post("/api/v1/relationships", json=data, headers=analyst.headers)
    assert field_errors(assert_problem(response, 422)) == {field: message}
    assert rel_count(session) == before and audit_count() == events


def test_missing_fields_are_all_named(client, analyst):
    response = client.post("/api/v1/relationships", json={}, headers=analyst.headers)
    errors = field_errors(assert_problem(response, 422))
    assert set(errors) == {"source_id", "target_id", "kind"}


def test_an_asset_in_the_trash_cannot_be_linked(client, analyst, session, world):
    asset_service.delete(session, ACTOR, world["vault"].id)
    response = client.post("/api/v1/relationships", headers=analyst.headers, json={
        "source_id": str(world["web-db"].id), "target_id": str(world["vault"].id),
        "kind": "backs_up_to"})
    assert field_errors(assert_problem(response, 422)) == {
        "target_id": "“vault” is in the trash; restore it first."}


# --- list, filter, page -----------------------------------------------------------------------

def test_list_is_newest_first_with_both_ends(client, analyst, world):
    response = client.get("/api/v1/relationships", headers=analyst.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert [i["id"] for i in body["items"]] == ids(
        world["orders→replica"], world["orders→vault"], world["web→app"], world["app→orders"])
    assert body["next_cursor"] is None
    oldest = body["items"][-1]
    assert set(oldest) == ITEM_FIELDS
    assert oldest["kind"] == "depends_on" and oldest["description"] == "reads orders"
    assert oldest["source"] == {"id": str(world["app-db"].id), "name": "app-db"}
    assert oldest["target"] == {"id": str(world["orders-db"].id), "name": "orders-db"}
    assert oldest["created_by"] is None  # made by the system actor


def test_list_filters(client, analyst, session, world):
    run = make_run(session)
    world["orders→replica"].import_run_id = run.id  # as an import states it
    session.commit()

    def listed(query: str) -> list[str]:
        response = client.get(f"/api/v1/relationships?{query}", headers=analyst.headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [i["id"] for i in response.get_json()["items"]]

    assert listed("kind=depends_on") == ids(world["web→app"], world["app→orders"])
    assert listed("kind=replicates_to") == ids(world["orders→replica"])
    assert listed(f"asset_id={world['app-db'].id}") == ids(world["web→app"], world["app→orders"])
    assert listed(f"source_id={world['orders-db'].id}") == ids(world["orders→replica"],
                                                              world["orders→vault"])
    assert listed(f"target_id={world['orders-db'].id}") == ids(world["app→orders"])
    assert listed(f"source_id={world['orders-db'].id}&kind=backs_up_to") == ids(world["orders→vault"])
    assert listed("q=VAULT") == ids(world["orders→vault"])  # either end's name, any case
    assert listed("q=web") == ids(world["web→app"])
    assert listed("q=%25") == []  # a LIKE wildcard is literal text
    assert listed("origin=discovered") == ids(world["orders→replica"])
    assert listed("origin=manual") == ids(world["orders→vault"], world["web→app"],
                                          world["app→orders"])
    assert listed(f"asset_id={uuid.uuid4()}") == []
    # a link to an asset in the trash is not listed
    asset_service.delete(session, ACTOR, world["vault"].id)
    assert listed(f"source_id={world['orders-db'].id}") == ids(world["orders→replica"])


def test_list_pages_with_an_opaque_cursor(client, analyst, session, world):
    expected = ids(world["orders→replica"], world["orders→vault"], world["web→app"],
                   world["app→orders"])
    seen: list[str] = []
    cursors: list[str] = []
    url = "/api/v1/relationships?limit=3"
    while True:
        body = client.get(url, headers=analyst.headers).get_json()
        seen += [i["id"] for i in body["items"]]
        if body["next_cursor"] is None:
            break
        cursors.append(body["next_cursor"])
        url = f"/api/v1/relationships?limit=3&cursor={body['next_cursor']}"
    assert seen == expected
    assert len(cursors) == 1
    # a cursor keeps its place when a newer link arrives meanwhile
    link(session, world["vault"], world["web-db"])
    rest = client.get(f"/api/v1/relationships?limit=3&cursor={cursors[0]}",
                      headers=analyst.headers).get_json()
    assert [i["id"] for i in rest["items"]] == expected[3:]


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"), ("limit=501", "limit"), ("kind=likes", "kind"),
    ("origin=robot", "origin"), ("asset_id=nope", "asset_id"), ("cursor=bm90LWEtY3Vyc29y", "cursor"),
    ("cursor=%21%21", "cursor"),
])
def test_bad_list_parameters_are_422(client, analyst, world, query, field):
    response = client.get(f"/api/v1/relationships?{query}", headers=analyst.headers)
    assert field in field_errors(assert_problem(response, 422))


# --- read and delete --------------------------------------------------------------------------

def test_get_one(client, make_token, world):
    viewer = make_token("viewer")
    rel = world["orders→vault"]
    response = client.get(f"/api/v1/relationships/{rel.id}", headers=viewer.headers)
    assert response.status_code == 200
    item = response.get_json()
    assert item["id"] == str(rel.id) and item["kind"] == "backs_up_to"
    assert item["source"]["name"] == "orders-db" and item["target"]["name"] == "vault"


def test_delete_answers_204_and_the_link_is_gone(client, analyst, session, world, audit_count):
    rel_id = world["web→app"].id
    before, events = rel_count(session), audit_count()
    response = client.delete(f"/api/v1/relationships/{rel_id}", headers=analyst.headers)
    assert response.status_code == 204 and response.get_data() == b""
    assert rel_count(session) == before - 1
    assert audit_count() == events + 2  # unlink on each asset
    assert_problem(client.get(f"/api/v1/relationships/{rel_id}", headers=analyst.headers), 404)
    assert_problem(client.delete(f"/api/v1/relationships/{rel_id}", headers=analyst.headers), 404)


def test_unknown_relationship_is_404(client, analyst, world, session, audit_count):
    missing = uuid.uuid4()
    before, events = rel_count(session), audit_count()
    body = assert_problem(client.get(f"/api/v1/relationships/{missing}", headers=analyst.headers), 404)
    assert body["detail"] == "There is no such relationship."
    assert_problem(client.delete(f"/api/v1/relationships/{missing}", headers=analyst.headers), 404)
    assert rel_count(session) == before and audit_count() == events


# --- roles ------------------------------------------------------------------------------------

def test_a_viewer_reads_but_cannot_write(client, make_token, session, world, audit_count):
    viewer = make_token("viewer")
    assert client.get("/api/v1/relationships", headers=viewer.headers).status_code == 200
    graph = client.get(f"/api/v1/assets/{world['orders-db'].id}/graph", headers=viewer.headers)
    assert graph.status_code == 200
    before, events = rel_count(session), audit_count()
    created = client.post("/api/v1/relationships", headers=viewer.headers, json={
        "source_id": str(world["web-db"].id), "target_id": str(world["vault"].id),
        "kind": "feeds"})
    assert "analyst" in assert_problem(created, 403)["detail"]
    deleted = client.delete(f"/api/v1/relationships/{world['web→app'].id}", headers=viewer.headers)
    assert "analyst" in assert_problem(deleted, 403)["detail"]
    assert rel_count(session) == before and audit_count() == events


def test_a_read_only_token_cannot_write(client, make_token, session, world, audit_count):
    admin_ro = make_token("admin", read_only=True)
    assert client.get("/api/v1/relationships", headers=admin_ro.headers).status_code == 200
    before, events = rel_count(session), audit_count()
    created = client.post("/api/v1/relationships", headers=admin_ro.headers, json={
        "source_id": str(world["web-db"].id), "target_id": str(world["vault"].id),
        "kind": "feeds"})
    assert assert_problem(created, 403)["detail"] == "This token is read-only."
    deleted = client.delete(f"/api/v1/relationships/{world['web→app'].id}", headers=admin_ro.headers)
    assert assert_problem(deleted, 403)["detail"] == "This token is read-only."
    assert rel_count(session) == before and audit_count() == events


def test_no_token_is_401(client, world):
    response = client.get("/api/v1/relationships")
    assert_problem(response, 401)
    assert_problem(client.get(f"/api/v1/assets/{world['orders-db'].id}/graph"), 401)


# --- the graph --------------------------------------------------------------------------------

def graph(client, token, asset: Asset, query: str = "") -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.get(f"/api/v1/assets/{asset.id}/graph?{query}", headers=token.headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def nodes(body: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [(n["name"], n["depth"], n["side"]) for n in body["nodes"]]


def test_graph_down_is_what_depends_on_the_asset(client, analyst, world):
    body = graph(client, analyst, world["orders-db"], "direction=down&depth=1")
    assert set(body) == {"root", "direction", "depth", "truncated", "nodes", "edges"}
    assert body["root"] == str(world["orders-db"].id)
    assert (body["direction"], body["depth"], body["truncated"]) == ("down", 1, False)
    # the app needs orders; the replica is fed by it: both break when orders goes down
    assert nodes(body) == [("orders-db", 0, "self"), ("app-db", 1, "down"),
                           ("orders-replica", 1, "down")]
    root = body["nodes"][0]
    assert set(root) == NODE_FIELDS
    assert (root["id"], root["engine"], root["environment"], root["status"]) == (
        str(world["orders-db"].id), "postgresql", "production", "active")
    assert root["host"] == world["orders-db"].host
    assert sorted(e["id"] for e in body["edges"]) == sorted(
        ids(world["app→orders"], world["orders→replica"]))
    edge = next(e for e in body["edges"] if e["id"] == str(world["app→orders"].id))
    rel = world["app→orders"]
    assert edge == {"id": str(rel.id), "source_id": str(rel.source_id),
                    "target_id": str(rel.target_id), "kind": "depends_on",
                    "description": rel.description}
    deeper = graph(client, analyst, world["orders-db"], "direction=down&depth=2")
    assert nodes(deeper)[-1] == ("web-db", 2, "down")


def test_graph_up_is_what_the_asset_depends_on(client, analyst, world):
    body = graph(client, analyst, world["app-db"], "direction=up&depth=3")
    assert nodes(body) == [("app-db", 0, "self"), ("orders-db", 1, "up"), ("vault", 2, "up")]
    assert sorted(e["id"] for e in body["edges"]) == sorted(
        ids(world["app→orders"], world["orders→vault"]))


def test_graph_both_ways_by_default(client, analyst, world):
    body = graph(client, analyst, world["orders-db"])
    assert (body["direction"], body["depth"], body["truncated"]) == ("both", 2, False)
    assert nodes(body) == [("orders-db", 0, "self"), ("app-db", 1, "down"),
                           ("orders-replica", 1, "down"), ("vault", 1, "up"),
                           ("web-db", 2, "down")]
    assert len(body["edges"]) == 4


def test_graph_limit_truncates(client, analyst, world):
    body = graph(client, analyst, world["orders-db"], "direction=down&depth=2&limit=1")
    assert body["truncated"] is True
    assert len(body["nodes"]) == 2 and body["nodes"][0]["side"] == "self"
    assert body["nodes"][1]["depth"] == 1


def test_graph_depth_is_capped(client, analyst, session):
    chain = [make_asset(session, name=f"node-{i:02d}") for i in range(13)]
    for here, there in itertools.pairwise(chain):
        link(session, here, there)
    # node-12 is the deepest provider: everything depends on it, node-00 twelve steps away
    body = graph(client, analyst, chain[-1], "direction=down&depth=50")
    assert body["depth"] == relationships.MAX_DEPTH == 10
    assert body["truncated"] is True
    assert [n["depth"] for n in body["nodes"]] == list(range(11))
    assert body["nodes"][-1]["name"] == "node-02"
    exact = graph(client, analyst, chain[2], "direction=down&depth=10")
    assert exact["truncated"] is False and len(exact["nodes"]) == 3


def test_graph_of_an_unknown_asset_is_404(client, analyst):
    body = assert_problem(client.get(f"/api/v1/assets/{uuid.uuid4()}/graph",
                                     headers=analyst.headers), 404)
    assert body["detail"] == "There is no such asset."


@pytest.mark.parametrize("query, field", [
    ("direction=sideways", "direction"), ("depth=0", "depth"), ("depth=two", "depth"),
    ("limit=0", "limit"), ("limit=501", "limit"),
])
def test_bad_graph_parameters_are_422(client, analyst, world, query, field):
    response = client.get(f"/api/v1/assets/{world['orders-db'].id}/graph?{query}",
                          headers=analyst.headers)
    assert field in field_errors(assert_problem(response, 422))


# --- the OpenAPI document ---------------------------------------------------------------------

def test_routes_are_documented_with_their_schemas(client, make_token):
    document = client.get("/api/v1/openapi.json", headers=make_token("viewer").headers).get_json()
    paths = document["paths"]
    assert set(paths["/api/v1/relationships"]) == {"get", "post"}
    assert {"get", "delete"} <= set(paths["/api/v1/relationships/{relationship_id}"])
    assert "get" in paths["/api/v1/assets/{asset_id}/graph"]
    post = paths["/api/v1/relationships"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RelationshipWrite"}
    assert "Location" in post["responses"]["201"]["headers"]
    assert set(post["responses"]) == {"201", "401", "403", "409", "413", "422"}
    schemas = document["components"]["schemas"]
    assert sorted(schemas["RelationshipWrite"]["required"]) == ["kind", "source_id", "target_id"]
    assert schemas["RelationshipWrite"]["properties"]["kind"]["enum"] == [
        "depends_on", "replicates_to", "backs_up_to", "feeds", "member_of"]
    params = {p["name"]: p for p in paths["/api/v1/assets/{asset_id}/graph"]["get"]["parameters"]
              if p["in"] == "query"}
    assert params["direction"]["schema"]["enum"] == ["up", "down", "both"]
    assert set(schemas["Graph"]["properties"]) == {"root", "direction", "depth", "truncated",
                                                   "nodes", "edges"}
    listing = {p["name"] for p in paths["/api/v1/relationships"]["get"]["parameters"]}
    assert listing == {"kind", "asset_id", "source_id", "target_id", "q", "origin", "limit",
                       "cursor"}
