"""Four-eyes approval in the browser (SPEC §5): a covered edit is saved as a proposal, the asset
page says so, the review queue shows it as a diff, another reviewer approves it (or rejects it
with a reason); self-approval and analysts get 403; a stale one is refused; Settings."""

from __future__ import annotations

from sqlalchemy import select

from tests.factories import make_asset
from tests.web.browser import form_values
from tests.web.pages import parse
from webapp.models import Asset, AuditAction, AuditEvent, Proposal, ProposalStatus, Setting
from webapp.services import assets as asset_service
from webapp.services.actor import Actor


def _asset(session, asset_id):  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(Asset, asset_id)


def _propose_by_form(client, session, **extra):  # type: ignore[no-untyped-def]
    asset = make_asset(session, name="ledger", environment="production", criticality="critical",
                       owner="team-a@example.com", **extra)
    url = f"/assets/{asset.id}/edit"
    data = form_values(client.get(url).data, url)
    data["owner"] = "team-b@example.com"
    response = client.post(url, data=data)
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/assets/{asset.id}")
    return asset, session.scalars(select(Proposal).where(Proposal.asset_id == asset.id)).one()


def test_form_edit_becomes_a_proposal_shown_on_the_asset_and_in_the_queue(app, client, session, login_as):
    login_as("analyst")
    asset, proposal = _propose_by_form(client, session)
    assert _asset(session, asset.id).owner == "team-a@example.com"
    page = client.get(f"/assets/{asset.id}").get_data(as_text=True)
    assert "waiting for approval" in page
    banner = parse(page).by_id("waiting-changes")
    assert "1 change waiting for approval" in banner.text
    assert banner.find("a").get("href") == f"/conflicts/proposals/{proposal.id}"

    queue = client.get("/conflicts?kind=proposal")
    assert queue.status_code == 200
    html = queue.get_data(as_text=True)
    assert "Proposed change" in html and "ledger" in html and "team-b@example.com" in html
    assert "Proposed changes waiting for approval" in client.get("/conflicts").get_data(as_text=True)
    detail = client.get(f"/conflicts/proposals/{proposal.id}").get_data(as_text=True)
    assert "team-a@example.com" in detail and "team-b@example.com" in detail
    assert ">Approve<" not in detail  # an analyst sees no buttons


def test_another_reviewer_approves_from_the_queue(app, client, session, login_as):
    alice = login_as("analyst")
    asset, proposal = _propose_by_form(client, session)
    reviewer_client = app.test_client()
    bob = login_as("reviewer", test_client=reviewer_client)
    detail = reviewer_client.get(f"/conflicts/proposals/{proposal.id}").get_data(as_text=True)
    assert ">Approve<" in detail and ">Reject<" in detail
    response = reviewer_client.post(f"/conflicts/proposals/{proposal.id}/approve")
    assert response.status_code == 303
    saved = _asset(session, asset.id)
    assert saved.owner == "team-b@example.com" and saved.version == 2
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.approve)).one()
    assert event.actor_id == bob.id and alice.email in event.message and bob.email in event.message
    history = reviewer_client.get(f"/assets/{asset.id}/history").get_data(as_text=True)
    assert "approve" in history
    assert "waiting for approval" not in reviewer_client.get(f"/assets/{asset.id}").get_data(as_text=True)


def test_self_approval_and_analyst_approval_are_403(app, client, session, login_as):
    login_as("reviewer")
    _asset_row, proposal = _propose_by_form(client, session)
    own = client.post(f"/conflicts/proposals/{proposal.id}/approve")
    assert own.status_code == 403 and "another reviewer" in own.get_data(as_text=True)
    assert ">Approve<" not in client.get(f"/conflicts/proposals/{proposal.id}").get_data(as_text=True)
    analyst_client = app.test_client()
    login_as("analyst", test_client=analyst_client)
    assert analyst_client.post(f"/conflicts/proposals/{proposal.id}/approve").status_code == 403
    session.expire_all()
    assert session.get(Proposal, proposal.id).status is ProposalStatus.open


def test_stale_proposal_is_refused_and_rejected_with_a_reason(app, client, session, login_as):
    login_as("analyst")
    asset, proposal = _propose_by_form(client, session)
    asset_service.update(session, Actor.system("test"), asset.id, {"notes": "meanwhile"}, expected_version=1)
    reviewer_client = app.test_client()
    login_as("reviewer", test_client=reviewer_client)
    refused = reviewer_client.post(f"/conflicts/proposals/{proposal.id}/approve")
    assert refused.status_code == 409
    assert "changed since this change was proposed" in refused.get_data(as_text=True)
    assert _asset(session, asset.id).owner == "team-a@example.com"
    no_reason = reviewer_client.post(f"/conflicts/proposals/{proposal.id}/reject", data={"reason": ""})
    assert no_reason.status_code == 422 and "Say why" in no_reason.get_data(as_text=True)
    done = reviewer_client.post(f"/conflicts/proposals/{proposal.id}/reject", data={"reason": "outdated"})
    assert done.status_code == 303
    session.expire_all()
    assert session.get(Proposal, proposal.id).status is ProposalStatus.rejected


def test_uncovered_assets_still_edit_directly(client, session, login_as):
    login_as("analyst")
    asset = make_asset(session, environment="staging", criticality="critical", owner="a@example.com")
    url = f"/assets/{asset.id}/edit"
    data = form_values(client.get(url).data, url)
    data["owner"] = "b@example.com"
    assert client.post(url, data=data).status_code == 303
    assert _asset(session, asset.id).owner == "b@example.com"
    assert session.scalars(select(Proposal)).first() is None


def test_admin_turns_approval_off_in_settings_audited(client, session, login_as):
    login_as("admin")
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "Approval of manual edits" in page and "Require approval" in page
    response = client.post("/admin/settings/approval", data={"environments": ["production"],
                                                              "criticalities": ["high", "critical"]})
    assert response.status_code == 303
    session.expire_all()
    assert session.get(Setting, "approval_required").value["enabled"] is False
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.settings_change)).one()
    assert event.changes["approval_required"][1]["enabled"] is False
    bad = client.post("/admin/settings/approval", data={"enabled": "on", "criticalities": ["high"]},
                      follow_redirects=True)
    assert "Approval rule not saved" in bad.get_data(as_text=True)
    # off: a covered asset edits directly
    asset = make_asset(session, environment="production", criticality="critical", owner="a@example.com")
    url = f"/assets/{asset.id}/edit"
    data = form_values(client.get(url).data, url)
    data["owner"] = "b@example.com"
    client.post(url, data=data)
    assert _asset(session, asset.id).owner == "b@example.com"


def test_only_admins_change_the_approval_rule(app, session, login_as):
    for role in ("viewer", "analyst", "reviewer"):
        other = app.test_client()
        login_as(role, test_client=other)
        response = other.post("/admin/settings/approval", data={"environments": ["production"]})
        assert response.status_code == 403, role
