"""POST /api/v1/assets/bulk, GET /api/v1/change-sets/{id}, POST …/undo (SPEC §7)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tests.api.conftest import assert_problem, field_errors
from tests.factories import ACTOR, make_asset
from webapp.models import Asset, AuditEvent, ChangeSet, ChangeSetItem
from webapp.services import assets as asset_service


def _count(session, model, *where) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _owner(session, asset_id) -> str | None:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(Asset, asset_id).owner


@pytest.fixture
def three(session):  # type: ignore[no-untyped-def]
    return [make_asset(session, name=f"api-{n}", owner="old@example.com", environment="production")
            for n in range(3)]


def test_a_dry_run_answers_the_preview_and_writes_nothing(client, admin, session, three, audit_count):
    before = (audit_count(), _count(session, ChangeSet), _count(session, ChangeSetItem))
    response = client.post("/api/v1/assets/bulk", headers=admin.headers, json={
        "ids": [str(a.id) for a in three], "set": {"owner": "new@example.com"}, "dry_run": True})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["dry_run"] is True
    assert (body["matched"], body["changes"], body["unchanged"], body["locked"], body["refused"]) == (3, 3, 0, 0, 0)
    assert body["sample"][0]["changes"] == {"owner": ["old@example.com", "new@example.com"]}
    assert (audit_count(), _count(session, ChangeSet), _count(session, ChangeSetItem)) == before
    assert _owner(session, three[0].id) == "old@example.com"


def test_a_bulk_change_by_ids_is_applied_and_undone(client, admin, session, three, audit_count):
    events = audit_count()
    response = client.post("/api/v1/assets/bulk", headers=admin.headers, json={
        "ids": [str(a.id) for a in three[:2]], "set": {"owner": "new@example.com", "criticality": "medium"},
        "add_tags": ["pci"]})
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert response.headers["Location"] == f"/api/v1/change-sets/{body['id']}"
    assert body["status"] == "succeeded" and body["number"] == 1 and body["kind"] == "bulk"
    assert (body["matched"], body["changed"], body["refused"]) == (2, 2, 0)
    assert body["progress"] == {"processed": 2, "total": 2, "percent": 100}
    assert body["actor_label"] == f"{admin.user.email} (token automation)"
    assert body["description"] == "Set owner to “new@example.com”, criticality to “medium”; add tag “pci”"
    assert audit_count() == events + 2
    assert _count(session, AuditEvent, AuditEvent.change_set_id == uuid.UUID(body["id"])) == 2
    assert _owner(session, three[0].id) == "new@example.com"
    assert _owner(session, three[2].id) == "old@example.com"

    read = client.get(response.headers["Location"], headers=admin.headers)
    assert read.status_code == 200 and read.get_json()["id"] == body["id"]

    undone = client.post(f"/api/v1/change-sets/{body['id']}/undo", headers=admin.headers)
    assert undone.status_code == 202, undone.get_json()
    reverse = undone.get_json()
    assert reverse["kind"] == "undo" and reverse["undo_of"] == body["id"] and reverse["changed"] == 2
    assert _owner(session, three[0].id) == "old@example.com"
    assert [t.name for t in session.get(Asset, three[0].id).tags] == []
    again = client.post(f"/api/v1/change-sets/{body['id']}/undo", headers=admin.headers)
    assert "undone already" in assert_problem(again, 409)["detail"]


def test_a_bulk_change_by_filter_with_several_values(client, admin, session, three):
    staging = make_asset(session, name="api-staging", environment="staging")
    elsewhere = make_asset(session, name="other", environment="development")
    response = client.post("/api/v1/assets/bulk", headers=admin.headers, json={
        "filter": {"environment": ["production", "staging"], "q": "api-"}, "set": {"status": "deprecated"}})
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["matched"] == 4 and body["changed"] == 4
    assert body["selection"] == {"filter": {"environment": ["production", "staging"], "q": "api-"}}
    session.expire_all()
    assert session.get(Asset, staging.id).status.value == "deprecated"
    assert session.get(Asset, elsewhere.id).status.value == "active"


@pytest.mark.parametrize("selection", [
    {"policy": "ownership.owner_set"},
    {"policy": "ownership.owner_set", "policy_status": ["fail"]},
    {"policy_failing": True, "unowned": True},
])
def test_a_bulk_change_by_policy_and_ownership_filters(client, admin, session, three, selection):
    unowned = make_asset(session, name="api-nobody", owner=None, environment="production")
    response = client.post("/api/v1/assets/bulk", headers=admin.headers, json={
        "filter": selection, "set": {"owner": "dba@example.com"}})
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert (body["matched"], body["changed"]) == (1, 1)
    assert _owner(session, unowned.id) == "dba@example.com"
    assert [_owner(session, a.id) for a in three] == ["old@example.com"] * 3
    # the change kept the stored results current: nothing fails "owner set" any more
    again = client.post("/api/v1/assets/bulk", headers=admin.headers, json={
        "filter": {"policy": "ownership.owner_set"}, "set": {"owner": "x@example.com"}, "dry_run": True})
    assert "filter" in field_errors(assert_problem(again, 422))  # it matches no asset


def test_a_bulk_filter_names_a_bad_policy_control(client, admin, three):
    response = client.post("/api/v1/assets/bulk", headers=admin.headers, json={
        "filter": {"policy": "no.such.control"}, "set": {"owner": "x@example.com"}})
    assert "filter.policy" in field_errors(assert_problem(response, 422))


def test_an_asset_changed_since_is_refused_on_undo_and_listed(client, admin, session, three):
    body = client.post("/api/v1/assets/bulk", headers=admin.headers, json={
        "ids": [str(a.id) for a in three], "delete": True}).get_json()
    assert body["changed"] == 3
    session.expire_all()
    asset_service.restore(session, ACTOR, three[1].id)
    reverse = client.post(f"/api/v1/change-sets/{body['id']}/undo", headers=admin.headers).get_json()
    assert (reverse["changed"], reverse["refused"]) == (2, 1)
    assert reverse["reported"][0]["asset_id"] == str(three[1].id)
    assert "changed since the change set" in reverse["reported"][0]["reason"]


@pytest.mark.parametrize("body,field", [
    ({"ids": ["{a}"], "set": {"name": "x"}}, "set.name"),
    ({"ids": ["{a}"], "set": {"environment": "moon"}}, "set.environment"),
    ({"ids": ["{a}"], "set": {"environment": None}}, "set.environment"),
    ({"ids": ["{a}"], "set": {"owner": "x" * 201}}, "set.owner"),
    ({"ids": ["{a}"], "set": {"port": 5432}}, "set.port"),
    ({"ids": [], "set": {"owner": "x"}}, "ids"),
    ({"ids": ["not-a-uuid"], "set": {"owner": "x"}}, "ids.0"),
    ({"ids": [str(uuid.uuid4())], "set": {"owner": "x"}}, "ids"),
    ({"ids": "{a}", "set": {"owner": "x"}}, "ids"),
    ({"set": {"owner": "x"}}, "ids"),
    ({"ids": ["{a}"], "filter": {}, "set": {"owner": "x"}}, "ids"),
    ({"filter": {"environment": "moon"}, "set": {"owner": "x"}}, "filter.environment"),
    ({"filter": {"nonsense": "x"}, "set": {"owner": "x"}}, "filter.nonsense"),
    ({"filter": {"q": "matches-nothing"}, "set": {"owner": "x"}}, "filter"),
    ({"ids": ["{a}"]}, "action"),
    ({"ids": ["{a}"], "delete": True, "add_tags": ["x"]}, "delete"),
    ({"ids": ["{a}"], "add_tags": ["a"], "remove_tags": ["a"]}, "remove_tags"),
    ({"ids": ["{a}"], "add_tags": [""]}, "add_tags.0"),
    ({"ids": ["{a}"], "delete": "yes"}, "delete"),
    ({"ids": ["{a}"], "set": {"owner": "x"}, "dry": True}, "dry"),
])
def test_bad_requests_are_422_naming_the_field_and_write_nothing(client, admin, session, three, audit_count,
                                                                 body, field):
    events = audit_count()
    fixed = {k: ([v.format(a=three[0].id) for v in value] if isinstance(value, list)
                 and all(isinstance(v, str) for v in value) else
                 value.format(a=three[0].id) if isinstance(value, str) else value)
             for k, value in body.items()}
    response = client.post("/api/v1/assets/bulk", headers=admin.headers, json=fixed)
    problem = assert_problem(response, 422)
    assert field in field_errors(problem), problem
    assert audit_count() == events and _count(session, ChangeSet) == 0


def test_unknown_change_sets_are_404(client, admin):
    assert_problem(client.get(f"/api/v1/change-sets/{uuid.uuid4()}", headers=admin.headers), 404)
    assert_problem(client.post(f"/api/v1/change-sets/{uuid.uuid4()}/undo", headers=admin.headers), 404)
    assert client.get("/api/v1/change-sets/not-a-uuid", headers=admin.headers).status_code == 404


def test_a_body_that_is_not_json_is_refused(client, admin, three):
    response = client.post("/api/v1/assets/bulk", headers={**admin.headers, "Content-Type": "application/json"},
                           data=b'{"ids": [NaN]}')
    assert response.status_code in (400, 422)
