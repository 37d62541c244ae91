"""Four-eyes approval (SPEC §5 Review, `approval_required`): covered edits become proposals, a
second reviewer approves (applied, audited with both people) or rejects them; self-approval,
analysts and stale proposals are refused; bulk actions hold covered assets; the setting."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.factories import make_asset
from webapp.models import Asset, AuditAction, AuditEvent, Proposal, ProposalStatus
from webapp.services import assets as asset_service
from webapp.services import audit, change_sets, proposals, settings
from webapp.services.actor import Actor
from webapp.services.change_sets import BulkAction, Selection
from webapp.services.errors import Forbidden, InvalidState, StaleVersion, ValidationFailed


@pytest.fixture
def people(make_user):  # type: ignore[no-untyped-def]
    def person(role: str) -> Actor:
        user = make_user(role)
        return Actor(user_id=user.id, label=user.email)

    return person


def _critical(session, **extra):  # type: ignore[no-untyped-def]
    return make_asset(session, environment="production", criticality="critical", **extra)


def test_a_covered_edit_is_a_proposal_and_the_asset_is_unchanged(session, people):
    analyst = people("analyst")
    asset = _critical(session, owner="team-a")
    result = proposals.submit(session, analyst, asset.id, {"owner": "team-b"}, expected_version=1)
    assert isinstance(result, Proposal)
    assert result.changes == {"owner": ["team-a", "team-b"]} and result.base_version == 1
    session.expire_all()
    assert session.get(Asset, asset.id).owner == "team-a" and session.get(Asset, asset.id).version == 1
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.propose)).one()
    assert event.entity_type == "proposal" and event.entity_id == str(result.id)
    assert event.actor_label == analyst.label and event.changes["owner"] == ["team-a", "team-b"]


def test_another_reviewer_approves_it_applied_once_audit_names_both(session, people):
    analyst, reviewer = people("analyst"), people("reviewer")
    asset = _critical(session, owner="team-a")
    proposal = proposals.submit(session, analyst, asset.id, {"owner": "team-b", "notes": "moved"},
                                expected_version=1)
    done = proposals.approve(session, reviewer, proposal.id)
    assert done.status is ProposalStatus.approved and done.applied_version == 2
    session.expire_all()
    asset = session.get(Asset, asset.id)
    assert (asset.owner, asset.notes, asset.version) == ("team-b", "moved", 2)
    assert "owner" in asset.locked_fields  # a person's edit, as any other
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.approve)).one()
    assert event.entity_type == "asset" and event.entity_id == str(asset.id)
    assert event.actor_id == reviewer.user_id
    assert analyst.label in event.message and reviewer.label in event.message
    assert event.changes["owner"] == ["team-a", "team-b"] and event.changes["version"] == [1, 2]


def test_nobody_approves_their_own_and_analysts_cannot(session, people):
    reviewer, analyst = people("reviewer"), people("analyst")
    asset = _critical(session)
    own = proposals.submit(session, reviewer, asset.id, {"owner": "x"}, expected_version=None)
    with pytest.raises(Forbidden, match="another reviewer"):
        proposals.approve(session, reviewer, own.id)
    with pytest.raises(Forbidden, match="reviewer role"):
        proposals.approve(session, analyst, own.id)
    with pytest.raises(Forbidden):
        proposals.reject(session, analyst, own.id, "no")
    session.expire_all()
    assert session.get(Proposal, own.id).is_open


def test_a_stale_proposal_is_refused_then_rebased_or_rejected(session, people):
    analyst, reviewer = people("analyst"), people("reviewer")
    asset = _critical(session, owner="team-a")
    proposal = proposals.submit(session, analyst, asset.id, {"owner": "team-b"}, expected_version=1)
    # someone changes the asset meanwhile (turning approval off for that edit)
    asset_service.update(session, Actor.system("test"), asset.id, {"notes": "meanwhile"}, expected_version=1)
    with pytest.raises(InvalidState, match="changed since this change was proposed"):
        proposals.approve(session, reviewer, proposal.id)
    session.expire_all()
    assert session.get(Asset, asset.id).owner == "team-a"
    rebased = proposals.rebase(session, analyst, proposal.id)
    assert rebased.base_version == 2 and rebased.changes == {"owner": ["team-a", "team-b"]}
    assert proposals.approve(session, reviewer, proposal.id).applied_version == 3


def test_reject_needs_a_reason_and_changes_nothing(session, people):
    analyst, reviewer = people("analyst"), people("reviewer")
    asset = _critical(session, owner="team-a")
    proposal = proposals.submit(session, analyst, asset.id, {"owner": "team-b"}, expected_version=1)
    with pytest.raises(ValidationFailed) as refused:
        proposals.reject(session, reviewer, proposal.id, "  ")
    assert "reason" in refused.value.errors
    done = proposals.reject(session, reviewer, proposal.id, "owner is right as it is")
    assert done.status is ProposalStatus.rejected and done.reason == "owner is right as it is"
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.reject)).one()
    assert "owner is right as it is" in event.message and event.actor_id == reviewer.user_id
    with pytest.raises(InvalidState, match="rejected already"):
        proposals.approve(session, people("reviewer"), proposal.id)
    session.expire_all()
    assert session.get(Asset, asset.id).version == 1


@pytest.mark.parametrize(("before", "edit", "covered"), [
    ({"environment": "production", "criticality": "high"}, {"environment": "staging"}, True),  # demotion
    ({"environment": "production", "criticality": "critical"}, {"criticality": "low"}, True),
    ({"environment": "staging", "criticality": "high"}, {"environment": "production"}, True),  # promotion
    ({"environment": "production", "criticality": "medium"}, {"owner": "x"}, False),
    ({"environment": "staging", "criticality": "critical"}, {"owner": "x"}, False),
])
def test_what_approval_covers(session, people, before, edit, covered):
    asset = make_asset(session, **before)
    result = proposals.submit(session, people("analyst"), asset.id, edit, expected_version=1)
    assert isinstance(result, Proposal) is covered


def test_uncovered_assets_still_edit_directly_and_a_stale_edit_is_refused(session, people):
    asset = make_asset(session, environment="staging", criticality="critical")
    result = proposals.submit(session, people("analyst"), asset.id, {"owner": "x"}, expected_version=1)
    assert isinstance(result, Asset) and result.version == 2
    with pytest.raises(StaleVersion):
        proposals.submit(session, people("analyst"), asset.id, {"owner": "y"}, expected_version=1)


def test_turning_approval_off_makes_covered_edits_direct(session, people):
    admin = people("admin")
    changed = settings.update(session, admin, {"approval_required": {"enabled": False, "environments": [],
                                                                      "criticalities": []}})
    assert changed["approval_required"][1]["enabled"] is False
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.settings_change)).one()
    assert "approval_required" in event.changes
    asset = _critical(session)
    assert isinstance(proposals.submit(session, people("analyst"), asset.id, {"owner": "x"},
                                       expected_version=1), Asset)
    with pytest.raises(ValidationFailed) as bad:
        settings.update(session, admin, {"approval_required": {"enabled": True, "environments": ["prod"],
                                                                "criticalities": ["high"]}})
    assert "approval_required.environments" in bad.value.errors


def test_bulk_covered_assets_become_proposals_the_rest_apply(session, people):
    analyst = people("analyst")
    covered = _critical(session, owner="a")
    plain = make_asset(session, environment="staging", owner="a")
    selection = Selection.of_ids([covered.id, plain.id])
    action = BulkAction.parse({"owner": "b"})
    preview = change_sets.preview(session, selection, action)
    assert (preview.matched, preview.changes, preview.locked) == (2, 1, 1)
    cs = change_sets.create(session, analyst, selection, action)
    done = change_sets.execute(session, change_sets.apply(session, analyst, cs.id).id)
    assert (done.changed, done.locked, done.refused) == (1, 1, 0)
    session.expire_all()
    assert session.get(Asset, plain.id).owner == "b"
    assert session.get(Asset, covered.id).owner == "a"
    held = session.scalars(select(Proposal)).one()
    assert held.asset_id == covered.id and held.change_set_id == cs.id
    assert held.changes == {"owner": ["a", "b"]}
    # the change set's undo puts back what it applied; the proposal stays for a reviewer
    undo = change_sets.execute(session, change_sets.undo(session, analyst, cs.id).id)
    assert undo.changed == 1
    assert proposals.approve(session, people("reviewer"), held.id).status is ProposalStatus.approved


def test_bulk_proposals_are_written_together_as_a_persons_are(session, people):
    """A batch's proposals go in at once (one insert, one append to the chain): each row and
    its `propose` event are what a single covered edit writes, in asset order, and the chain
    verifies."""
    analyst = people("analyst")
    covered = sorted((_critical(session, owner=f"o{i}", tags=["pci"] if i == 1 else []) for i in range(3)),
                     key=lambda a: a.id)
    plain = make_asset(session, environment="staging", owner="a")
    already = _critical(session, owner="b")
    selection = Selection.of_ids([*(a.id for a in covered), plain.id, already.id])
    cs = change_sets.create(session, analyst, selection, BulkAction.parse({"owner": "b"}))
    done = change_sets.execute(session, change_sets.apply(session, analyst, cs.id).id)
    assert (done.changed, done.locked, done.unchanged, done.refused) == (1, 3, 1, 0)
    held = {p.asset_id: p for p in session.scalars(select(Proposal))}
    assert set(held) == {a.id for a in covered}
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.propose)
                                  .order_by(AuditEvent.id)))
    assert [e.entity_id for e in events] == [str(held[a.id].id) for a in covered]
    for asset, event in zip(covered, events, strict=True):
        proposal = held[asset.id]
        assert proposal.status is ProposalStatus.open and proposal.base_version == asset.version
        assert proposal.proposed_by == analyst.user_id and proposal.proposed_by_label == analyst.label
        assert proposal.changes == {"owner": [asset.owner, "b"]}
        assert event.change_set_id == cs.id and event.actor_id == analyst.user_id
        assert event.changes == {"owner": [asset.owner, "b"], "asset_id": [None, str(asset.id)],
                                 "base_version": [None, asset.version]}
        assert event.message == (f"proposed a change to “{asset.name}” (version {asset.version}), "
                                 "waiting for approval")
    assert audit.verify(session).ok
