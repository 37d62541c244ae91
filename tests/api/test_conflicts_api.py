"""/api/v1/conflicts (SPEC §7): list the review queue, read an item, resolve it.

Everyone with a token reads; reviewers and admins resolve with a read-write token. Errors are
problem+json: 404 unknown item, 409 not open any more, 422 bad action or choice.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tests.api.conftest import assert_problem, field_errors
from tests.factories import make_asset
from tests.review_factories import duplicate_assets, field_conflict, make_run, possible_duplicate
from webapp.models import Asset, AuditEvent, Conflict, ConflictStatus
from webapp.services import conflicts
from webapp.services.actor import Actor

CONFLICT_FIELDS = {
    "id", "kind", "status", "import_run_id", "import_number", "record_key", "candidate_id",
    "duplicate_id", "confidence", "reasons", "incoming", "fields", "resolution",
    "result_asset_id", "resolved_by", "resolved_at", "created_at",
}
INCOMING = {"name": "orders-db", "engine": "postgresql", "host": "db-new.example.com",
            "port": 5432, "owner": "team-b@example.com"}


@pytest.fixture
def world(session):  # type: ignore[no-untyped-def]
    run = make_run(session, source="cmdb")
    orders = make_asset(session, name="orders-db", host="db1.example.com", owner=None)
    copy = make_asset(session, name="orders-db-copy")
    return {
        "run": run, "orders": orders, "copy": copy,
        "record": possible_duplicate(session, orders, INCOMING, run=run, record_key="csv:1",
                                     confidence=0.82),
        "pair": duplicate_assets(session, orders, copy, confidence=0.64),
        "fields": field_conflict(session, orders, {"environment": ["production", "staging"]},
                                 run=run, record_key="csv:2"),
    }


@pytest.fixture
def reviewer(make_token):  # type: ignore[no-untyped-def]
    return make_token("reviewer", name="review-bot")


def events(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(AuditEvent))


def test_list_open_items_newest_first(client, world, reviewer):
    response = client.get("/api/v1/conflicts", headers=reviewer.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert [i["id"] for i in body["items"]] == [str(world[k].id) for k in ("fields", "pair", "record")]
    assert body["next_cursor"] is None
    record = body["items"][2]
    assert set(record) == CONFLICT_FIELDS
    assert record["kind"] == "possible_duplicate" and record["status"] == "open"
    assert record["record_key"] == "csv:1" and record["import_number"] == world["run"].number
    assert record["candidate_id"] == str(world["orders"].id) and record["duplicate_id"] is None
    assert record["confidence"] == 0.82 and record["incoming"] == INCOMING
    assert body["items"][0]["fields"] == {"environment": ["production", "staging"]}
    assert body["items"][1]["duplicate_id"] == str(world["copy"].id)


def test_list_filters_and_pages(client, world, reviewer, session):
    conflicts.resolve(session, Actor.system(), world["pair"].id, "dismiss")

    def keys(query: str) -> list[str]:
        response = client.get(f"/api/v1/conflicts?{query}", headers=reviewer.headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [i["id"] for i in response.get_json()["items"]]

    ids = {k: str(world[k].id) for k in ("record", "pair", "fields")}
    assert keys("") == [ids["fields"], ids["record"]]
    assert keys("status=dismissed") == [ids["pair"]]
    assert keys("status=any") == [ids["fields"], ids["pair"], ids["record"]]
    assert keys("kind=field_conflict") == [ids["fields"]]
    assert keys(f"import_id={world['run'].id}&min_confidence=0.9") == [ids["fields"]]
    assert keys("min_confidence=0.5&kind=possible_duplicate") == [ids["record"]]

    first = client.get("/api/v1/conflicts?status=any&limit=2", headers=reviewer.headers).get_json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = client.get(f"/api/v1/conflicts?status=any&limit=2&cursor={first['next_cursor']}",
                      headers=reviewer.headers).get_json()
    assert [i["id"] for i in rest["items"]] == [ids["record"]] and rest["next_cursor"] is None


@pytest.mark.parametrize("query,field", [
    ("status=closed", "status"), ("kind=x", "kind"), ("import_id=12", "import_id"),
    ("min_confidence=2", "min_confidence"), ("min_confidence=nan", "min_confidence"),
    ("limit=0", "limit"), ("cursor=bogus", "cursor"),
])
def test_bad_list_parameters_are_422(client, world, reviewer, query, field):
    body = assert_problem(client.get(f"/api/v1/conflicts?{query}", headers=reviewer.headers), 422)
    assert field in field_errors(body)


def test_get_one_and_unknown_is_404(client, world, make_token):
    viewer = make_token("viewer")
    response = client.get(f"/api/v1/conflicts/{world['pair'].id}", headers=viewer.headers)
    assert response.status_code == 200 and response.get_json()["kind"] == "possible_duplicate"
    assert response.get_json()["import_number"] is None
    assert_problem(client.get("/api/v1/conflicts/00000000-0000-0000-0000-000000000000",
                              headers=viewer.headers), 404)


def test_resolve_merge_returns_the_resolved_item(client, world, reviewer, session):
    before = events(session)
    response = client.post(f"/api/v1/conflicts/{world['record'].id}/resolve", headers=reviewer.headers,
                           json={"action": "merge", "fields": {"host": "incoming"}})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "merged" and body["result_asset_id"] == str(world["orders"].id)
    assert body["resolved_by"] == str(reviewer.user.id) and body["resolved_at"]
    assert body["resolution"] == {"action": "merge",
                                  "fields": {"host": "incoming", "owner": "incoming"}}
    session.expire_all()
    orders = session.get(Asset, world["orders"].id)
    assert (orders.host, orders.owner) == ("db-new.example.com", "team-b@example.com")
    assert events(session) == before + 2
    last = session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    assert last.action.value == "resolve" and last.actor_label == f"{reviewer.user.email} (token review-bot)"


def test_resolve_create_and_dismiss(client, world, reviewer, session):
    created = client.post(f"/api/v1/conflicts/{world['record'].id}/resolve",
                          headers=reviewer.headers, json={"action": "create"}).get_json()
    assert created["status"] == "created" and created["result_asset_id"] not in (None, str(world["orders"].id))
    assert session.get(Asset, uuid.UUID(created["result_asset_id"])).source == "cmdb"
    dismissed = client.post(f"/api/v1/conflicts/{world['pair'].id}/resolve",
                            headers=reviewer.headers, json={"action": "dismiss"}).get_json()
    assert dismissed["status"] == "dismissed" and dismissed["result_asset_id"] is None


def test_resolving_a_resolved_item_is_409(client, world, reviewer, session):
    conflicts.resolve(session, Actor.system(), world["record"].id, "dismiss")
    before = events(session)
    body = assert_problem(client.post(f"/api/v1/conflicts/{world['record'].id}/resolve",
                                      headers=reviewer.headers, json={"action": "merge"}), 409)
    assert "already resolved (dismissed" in body["detail"]
    assert events(session) == before


@pytest.mark.parametrize("item,payload,field", [
    ("record", {"action": "approve"}, "action"),
    ("record", {}, "action"),
    ("record", {"action": "merge", "fields": {"host": "theirs"}}, "fields.host"),
    ("record", {"action": "merge", "extra": 1}, "extra"),
    ("record", {"action": "merge", "fields": {"colour": "incoming"}}, "colour"),
    ("pair", {"action": "create"}, "action"),
    ("fields", {"action": "create"}, "action"),
    ("fields", {"action": "merge", "fields": {"owner": "incoming"}}, "owner"),
])
def test_bad_resolutions_are_422_and_change_nothing(client, world, reviewer, session, item, payload,
                                                    field):
    before = events(session)
    body = assert_problem(client.post(f"/api/v1/conflicts/{world[item].id}/resolve",
                                      headers=reviewer.headers, json=payload), 422)
    assert any(f == field or f.endswith(f".{field}") or f.startswith(field) for f in field_errors(body)), body
    session.expire_all()
    assert session.get(Conflict, world[item].id).status == ConflictStatus.open
    assert events(session) == before


def test_invalid_json_is_a_validation_problem(client, world, reviewer):
    response = client.post(f"/api/v1/conflicts/{world['record'].id}/resolve", headers=reviewer.headers,
                           data='{"action": NaN}', content_type="application/json")
    assert "Invalid JSON body" in field_errors(assert_problem(response, 422))["body"]


@pytest.mark.parametrize("role,read_only,reason", [
    ("viewer", False, "reviewer"), ("analyst", False, "reviewer"), ("reviewer", True, "read-only"),
    ("admin", True, "read-only"),
])
def test_only_read_write_reviewer_tokens_resolve(client, world, make_token, session, role,
                                                 read_only, reason):
    issued = make_token(role, read_only=read_only)
    assert client.get("/api/v1/conflicts", headers=issued.headers).status_code == 200
    body = assert_problem(client.post(f"/api/v1/conflicts/{world['record'].id}/resolve",
                                      headers=issued.headers, json={"action": "dismiss"}), 403)
    assert reason in body["detail"]
    session.expire_all()
    assert session.get(Conflict, world["record"].id).status == ConflictStatus.open


def test_admin_token_resolves(client, world, admin):
    response = client.post(f"/api/v1/conflicts/{world['fields'].id}/resolve", headers=admin.headers,
                           json={"action": "merge", "fields": {"environment": "incoming"}})
    assert response.status_code == 200 and response.get_json()["status"] == "merged"
