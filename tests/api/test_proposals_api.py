"""/api/v1/proposals (SPEC §5, §7): a PATCH of a covered asset answers 202 with the proposal's
location; another reviewer approves it; self-approval and analysts get 403; a stale proposal
409; reject needs a reason."""

from __future__ import annotations

from sqlalchemy import select

from tests.api.conftest import assert_problem, field_errors
from tests.factories import make_asset
from webapp.models import AuditAction, AuditEvent


def _propose(client, session, token, **fields):  # type: ignore[no-untyped-def]
    asset = make_asset(session, environment="production", criticality="high", owner="team-a")
    response = client.patch(f"/api/v1/assets/{asset.id}", json={"owner": "team-b", **fields},
                            headers={**token.headers, "If-Match": '"1"'})
    assert response.status_code == 202, response.get_data(as_text=True)
    return asset, response


def test_patch_of_a_covered_asset_answers_202_with_the_proposal(client, session, make_token):
    analyst = make_token("analyst")
    asset, response = _propose(client, session, analyst)
    body = response.get_json()
    assert response.headers["Location"] == f"/api/v1/proposals/{body['id']}" == body["location"]
    assert body["status"] == "open" and body["base_version"] == 1 and body["stale"] is False
    assert body["changes"] == {"owner": ["team-a", "team-b"]}
    again = client.get(body["location"], headers=analyst.headers)
    assert again.status_code == 200 and again.get_json()["id"] == body["id"]
    unchanged = client.get(f"/api/v1/assets/{asset.id}", headers=analyst.headers).get_json()
    assert unchanged["owner"] == "team-a" and unchanged["version"] == 1
    listed = client.get(f"/api/v1/proposals?asset_id={asset.id}", headers=analyst.headers).get_json()
    assert [p["id"] for p in listed["items"]] == [body["id"]]


def test_another_reviewer_approves_and_the_audit_names_both(client, session, make_token):
    analyst, reviewer = make_token("analyst"), make_token("reviewer")
    asset, response = _propose(client, session, analyst)
    location = response.get_json()["location"]
    approved = client.post(f"{location}/approve", headers=reviewer.headers)
    assert approved.status_code == 200, approved.get_data(as_text=True)
    assert approved.get_json()["status"] == "approved" and approved.get_json()["applied_version"] == 2
    now = client.get(f"/api/v1/assets/{asset.id}", headers=analyst.headers).get_json()
    assert now["owner"] == "team-b" and now["version"] == 2
    session.expire_all()
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.approve)).one()
    assert event.actor_id == reviewer.user.id
    assert analyst.user.email in event.message and reviewer.user.email in event.message
    history = client.get(f"/api/v1/assets/{asset.id}/audit", headers=analyst.headers).get_json()
    assert history["items"][0]["action"] == "approve"


def test_self_approval_and_analyst_approval_are_403(client, session, make_token):
    reviewer, analyst = make_token("reviewer"), make_token("analyst")
    _asset, response = _propose(client, session, reviewer)
    location = response.get_json()["location"]
    own = assert_problem(client.post(f"{location}/approve", headers=reviewer.headers), 403)
    assert "another reviewer" in own["detail"]
    assert_problem(client.post(f"{location}/approve", headers=analyst.headers), 403)
    assert client.get(location, headers=analyst.headers).get_json()["status"] == "open"


def test_a_stale_proposal_is_409_and_can_be_rejected_with_a_reason(client, session, make_token, admin):
    analyst, reviewer = make_token("analyst"), make_token("reviewer")
    asset, response = _propose(client, session, analyst)
    location = response.get_json()["location"]
    # another covered edit, approved first: the first proposal's base version is gone
    other = client.patch(f"/api/v1/assets/{asset.id}", json={"notes": "x"},
                         headers={**admin.headers, "If-Match": '"1"'}).get_json()["location"]
    assert client.post(f"{other}/approve", headers=reviewer.headers).status_code == 200
    assert client.get(location, headers=analyst.headers).get_json()["stale"] is True
    stale = assert_problem(client.post(f"{location}/approve", headers=reviewer.headers), 409)
    assert "changed since this change was proposed" in stale["detail"]
    no_reason = assert_problem(client.post(f"{location}/reject", json={"reason": ""}, headers=reviewer.headers), 422)
    assert "reason" in field_errors(no_reason)
    rejected = client.post(f"{location}/reject", json={"reason": "superseded"}, headers=reviewer.headers)
    assert rejected.status_code == 200 and rejected.get_json()["reason"] == "superseded"
    assert client.get(f"/api/v1/assets/{asset.id}", headers=analyst.headers).get_json()["owner"] == "team-a"


def test_uncovered_assets_still_patch_directly(client, session, make_token):
    analyst = make_token("analyst")
    asset = make_asset(session, environment="production", criticality="medium")
    response = client.patch(f"/api/v1/assets/{asset.id}", json={"owner": "x"},
                            headers={**analyst.headers, "If-Match": '"1"'})
    assert response.status_code == 200 and response.get_json()["version"] == 2


def test_openapi_documents_the_proposal_endpoints(client, make_token):
    document = client.get("/api/v1/openapi.json", headers=make_token("viewer").headers).get_json()
    paths = document["paths"]
    assert "202" in paths["/api/v1/assets/{asset_id}"]["patch"]["responses"]
    for path, method in [("/api/v1/proposals/{proposal_id}", "get"),
                         ("/api/v1/proposals/{proposal_id}/approve", "post"),
                         ("/api/v1/proposals/{proposal_id}/reject", "post")]:
        assert method in paths[path], path
