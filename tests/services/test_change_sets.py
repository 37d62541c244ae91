"""Bulk actions as change sets (SPEC §5): preview, apply, optimistic locking, undo, the audit
trail and its chain."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.factories import ACTOR, make_asset
from webapp.models import (
    Asset,
    AuditAction,
    AuditEvent,
    ChangeSet,
    ChangeSetItem,
    ChangeSetKind,
    ChangeSetStatus,
)
from webapp.models.base import utcnow
from webapp.services import asset_search, audit, change_sets, imports
from webapp.services import assets as asset_service
from webapp.services.actor import Actor
from webapp.services.change_sets import BulkAction, Selection
from webapp.services.errors import InvalidState, NotFound, ValidationFailed

PERSON = Actor(user_id=None, label="analyst@example.com")


def _count(session, model, *where) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _inventory(session, n: int, **extra: Any) -> None:  # type: ignore[no-untyped-def]
    """n assets named bulk-NNNNN, written by an import (fast, and as discovery would)."""
    records = [{"name": f"bulk-{i:05d}", "engine": "postgresql", "host": f"h{i}.example.com",
                "port": 5432, "owner": "dba@example.com" if i % 10 == 0 else f"team-{i % 7}",
                "tags": [f"t{i % 3}"], **extra} for i in range(n)]
    run = imports.create_run(session, Actor.cli(), data=json.dumps({"assets": records}).encode(),
                             filename="bulk.json")
    assert imports.execute(session, run.id).status.value == "succeeded"


def _by_filter(q: str) -> Selection:
    args = {"q": q}
    return Selection.of_filter(asset_search.parse_query(args), args)


def _run(session, selection: Selection, action: BulkAction, *, batch_size: int = 5000) -> ChangeSet:  # type: ignore[no-untyped-def]
    cs = change_sets.create(session, PERSON, selection, action)
    cs = change_sets.apply(session, PERSON, cs.id)
    return change_sets.execute(session, cs.id, batch_size=batch_size)


def _undo(session, cs: ChangeSet, *, batch_size: int = 5000) -> ChangeSet:  # type: ignore[no-untyped-def]
    reverse = change_sets.undo(session, PERSON, cs.id)
    return change_sets.execute(session, reverse.id, batch_size=batch_size)


def _owners(session) -> dict[uuid.UUID, str | None]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return dict(session.execute(select(Asset.id, Asset.owner)).tuples().all())


def test_bulk_set_on_5000_assets_then_undo(session, require_postgres):
    """The issue's test: counts, one audit event per asset with the change set id, an asset
    edited between preview and apply is reported, undo restores every value, the chain holds."""
    _inventory(session, 5000)
    before = _owners(session)
    selection, action = _by_filter("bulk-"), BulkAction.parse({"owner": "dba@example.com"})

    found = change_sets.preview(session, selection, action)
    assert (found.matched, found.changes, found.unchanged, found.locked, found.refused) == (5000, 4500, 500, 0, 0)
    assert len(found.sample) == change_sets.SAMPLE_SIZE
    assert found.sample[0]["changes"]["owner"][1] == "dba@example.com"

    cs = change_sets.create(session, PERSON, selection, action)
    assert cs.status is ChangeSetStatus.previewed and cs.number is None and cs.matched == 5000
    assert _count(session, ChangeSetItem, ChangeSetItem.change_set_id == cs.id) == 5000
    edited = session.scalar(select(Asset).where(Asset.name == "bulk-00001"))
    asset_service.update(session, ACTOR, edited.id, {"notes": "edited meanwhile"}, expected_version=None)

    cs = change_sets.apply(session, PERSON, cs.id)
    # (the import that made the inventory is change set #1)
    assert cs.status is ChangeSetStatus.queued and cs.number == 2 and cs.label == "change set #2"
    cs = change_sets.execute(session, cs.id, batch_size=1000)
    assert cs.status is ChangeSetStatus.succeeded and cs.processed == cs.total == 5000
    assert (cs.changed, cs.unchanged, cs.refused, cs.failed, cs.locked) == (4499, 500, 1, 0, 0)
    assert cs.reported == [{"asset_id": str(edited.id), "name": "bulk-00001",
                            "reason": "changed since the preview (version 1, now 2)"}]
    owners = _owners(session)
    assert owners[edited.id] == before[edited.id]  # reported, not overwritten
    assert sum(1 for o in owners.values() if o == "dba@example.com") == 4999

    events = session.execute(select(AuditEvent.entity_id, AuditEvent.action, AuditEvent.changes)
                             .where(AuditEvent.change_set_id == cs.id)).all()
    assert len(events) == 4499 and len({e.entity_id for e in events}) == 4499
    assert {e.action for e in events} == {AuditAction.update}
    assert all(e.changes["owner"][1] == "dba@example.com" and e.changes["version"] == [1, 2] for e in events)
    changed = session.scalar(select(Asset).where(Asset.name == "bulk-00002"))
    assert "owner" in changed.locked_fields and changed.field_sources["owner"] == "manual"
    assert changed.version == 2 and "dba@example.com" in changed.search_text
    assert audit.verify(session).ok

    reverse = _undo(session, cs, batch_size=1200)
    assert reverse.kind is ChangeSetKind.undo and reverse.undo_of == cs.id and reverse.number == 3
    assert reverse.status is ChangeSetStatus.succeeded
    assert (reverse.changed, reverse.refused, reverse.total) == (4499, 0, 4499)
    assert _owners(session) == before
    assert change_sets.get(session, cs.id).undone_by == reverse.id
    undo_events = _count(session, AuditEvent, AuditEvent.change_set_id == reverse.id,
                         AuditEvent.action == AuditAction.undo)
    assert undo_events == 4499
    assert audit.verify(session).ok


def _asset(session, asset_id) -> Asset:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(Asset, asset_id)


@pytest.mark.parametrize("field,value", [
    ("owner", "dba@example.com"), ("environment", "staging"), ("status", "deprecated"),
    ("criticality", "high"), ("data_classification", "restricted"), ("criticality", None),
])
def test_each_field_can_be_set_and_undone(session, field, value):
    # not production: raising a production asset's criticality to high needs approval (a
    # proposal, tests/services/test_proposals.py)
    a = make_asset(session, environment="development", criticality="low", data_classification="internal")
    b = make_asset(session, environment="development", criticality="low", data_classification="internal")
    old = {x.id: asset_service.snapshot(x)[field] for x in (a, b)}
    cs = _run(session, Selection.of_ids([a.id, b.id]), BulkAction.parse({field: value}))
    assert cs.changed == 2
    for asset in (a, b):
        assert audit.jsonable(asset_service.field_value(_asset(session, asset.id), field)) == value
    _undo(session, cs)
    for asset in (a, b):
        assert asset_service.snapshot(_asset(session, asset.id))[field] == old[asset.id]


def test_add_and_remove_a_tag_and_undo_each(session):
    a, b = make_asset(session, tags=["pci"]), make_asset(session, tags=[])
    added = _run(session, Selection.of_ids([a.id, b.id]), BulkAction.parse(add_tags=["PCI", "gdpr"]))
    assert added.changed == 2
    assert [t.name for t in _asset(session, a.id).tags] == ["gdpr", "pci"]
    assert [t.name for t in _asset(session, b.id).tags] == ["gdpr", "pci"]
    assert "gdpr" in _asset(session, b.id).search_text
    removed = _run(session, Selection.of_ids([a.id, b.id]), BulkAction.parse(remove_tags=["pci"]))
    assert removed.changed == 2
    assert [t.name for t in _asset(session, a.id).tags] == ["gdpr"]
    _undo(session, removed)
    assert [t.name for t in _asset(session, b.id).tags] == ["gdpr", "pci"]
    with pytest.raises(InvalidState, match="undone already"):
        change_sets.undo(session, PERSON, removed.id)
    # the addition was followed by the removal and its undo: both assets moved on since
    stale = _undo(session, added)
    assert stale.refused == 2 and stale.changed == 0
    assert {r["reason"] for r in stale.reported} == {"changed since the change set (version 2, now 4)"}


def test_delete_moves_to_the_trash_and_undo_restores(session):
    assets = [make_asset(session) for _ in range(3)]
    trashed = make_asset(session)
    asset_service.delete(session, ACTOR, trashed.id)
    cs = _run(session, Selection.of_ids([a.id for a in [*assets, trashed]]), BulkAction.parse(delete=True))
    assert (cs.changed, cs.refused) == (3, 1)
    assert cs.reported[0]["reason"] == "already in the trash"
    assert all(_asset(session, a.id).deleted_at is not None for a in assets)
    events = session.scalars(select(AuditEvent).where(AuditEvent.change_set_id == cs.id)).all()
    assert {e.action for e in events} == {AuditAction.delete}
    reverse = _undo(session, cs)
    assert reverse.changed == 3
    assert all(_asset(session, a.id).deleted_at is None for a in assets)
    assert _asset(session, trashed.id).deleted_at is not None  # not this change set's to restore
    assert audit.verify(session).ok


def test_undo_refuses_the_assets_changed_since_and_lists_them(session):
    a, b, c = (make_asset(session, owner="old@example.com") for _ in range(3))
    cs = _run(session, Selection.of_ids([a.id, b.id, c.id]), BulkAction.parse({"owner": "new@example.com"}))
    asset_service.update(session, ACTOR, b.id, {"owner": "someone@example.com"}, expected_version=None)
    asset_service.delete(session, ACTOR, c.id)
    reverse = _undo(session, cs)
    assert (reverse.changed, reverse.refused) == (1, 2)
    assert sorted(r["asset_id"] for r in reverse.reported) == sorted([str(b.id), str(c.id)])
    assert _asset(session, a.id).owner == "old@example.com"
    assert _asset(session, b.id).owner == "someone@example.com"


def test_a_change_set_is_undone_once(session):
    a = make_asset(session)
    cs = _run(session, Selection.of_ids([a.id]), BulkAction.parse({"status": "inactive"}))
    reverse = change_sets.undo(session, PERSON, cs.id)
    with pytest.raises(InvalidState, match="undone already"):
        change_sets.undo(session, PERSON, cs.id)
    change_sets.execute(session, reverse.id)
    with pytest.raises(InvalidState, match="undone already"):
        change_sets.undo(session, PERSON, cs.id)
    # the undo itself is a change set and can be undone: the change comes back
    _undo(session, change_sets.get(session, reverse.id))
    assert _asset(session, a.id).status.value == "inactive"


def test_a_preview_cannot_be_undone_and_is_applied_once(session):
    a = make_asset(session)
    cs = change_sets.create(session, PERSON, Selection.of_ids([a.id]), BulkAction.parse({"owner": "x"}))
    with pytest.raises(InvalidState):
        change_sets.undo(session, PERSON, cs.id)
    change_sets.apply(session, PERSON, cs.id)
    with pytest.raises(InvalidState, match="already applied"):
        change_sets.apply(session, PERSON, cs.id)


def test_a_change_set_that_changed_nothing_has_nothing_to_undo(session):
    a = make_asset(session, owner="same")
    cs = _run(session, Selection.of_ids([a.id]), BulkAction.parse({"owner": "same"}))
    assert (cs.changed, cs.unchanged) == (0, 1)
    with pytest.raises(InvalidState, match="nothing to undo"):
        change_sets.undo(session, PERSON, cs.id)


def test_preview_writes_nothing(session):
    assets = [make_asset(session) for _ in range(3)]
    counts = (_count(session, AuditEvent), _count(session, ChangeSet), _count(session, ChangeSetItem))
    found = change_sets.preview(session, Selection.of_ids([a.id for a in assets]), BulkAction.parse(delete=True))
    session.commit()
    assert found.changes == 3 and found.sample[0]["changes"] == {"in_trash": [False, True]}
    assert (_count(session, AuditEvent), _count(session, ChangeSet), _count(session, ChangeSetItem)) == counts
    assert all(_asset(session, a.id).deleted_at is None for a in assets)


@pytest.mark.parametrize("kwargs,field", [
    ({"set_values": {"name": "x"}}, "name"),
    ({"set_values": {"nonsense": "x"}}, "nonsense"),
    ({"set_values": {"environment": "moon"}}, "environment"),
    ({"set_values": {"environment": None}}, "environment"),
    ({"set_values": {"owner": "x" * 201}}, "owner"),
    ({"add_tags": ["x" * 65]}, "add_tags"),
    ({"add_tags": ["a"], "remove_tags": ["A"]}, "remove_tags"),
    ({"delete": True, "add_tags": ["a"]}, "delete"),
    ({}, "action"),
])
def test_bad_actions_name_the_field(kwargs, field):
    with pytest.raises(ValidationFailed) as caught:
        BulkAction.parse(**kwargs)
    assert field in caught.value.errors


@pytest.mark.parametrize("ids", [[], ["not-an-id"], [str(uuid.uuid4())] * 0, [1.5]])
def test_bad_selections_are_refused(ids):
    with pytest.raises(ValidationFailed) as caught:
        Selection.of_ids(ids)
    assert "ids" in caught.value.errors


def test_unknown_ids_and_empty_filters_are_refused(session):
    make_asset(session, name="present")
    action = BulkAction.parse({"owner": "x"})
    with pytest.raises(ValidationFailed) as caught:
        change_sets.preview(session, Selection.of_ids([uuid.uuid4()]), action)
    assert "No such asset" in caught.value.errors["ids"]
    with pytest.raises(ValidationFailed) as caught:
        change_sets.create(session, PERSON, _by_filter("absent"), action)
    assert caught.value.errors == {"filter": "No assets match this filter."}
    assert _count(session, ChangeSet) == 0
    with pytest.raises(NotFound):
        change_sets.get(session, "not-a-uuid")


def test_a_tag_beyond_the_maximum_fails_that_asset_only(session):
    full = make_asset(session, tags=[f"t{i}" for i in range(50)])
    other = make_asset(session)
    cs = _run(session, Selection.of_ids([full.id, other.id]), BulkAction.parse(add_tags=["one-more"]))
    assert (cs.changed, cs.failed) == (1, 1)
    assert "at most 50" in cs.reported[0]["reason"]


def test_a_stale_running_change_set_is_reaped(session):
    a = make_asset(session)
    cs = change_sets.create(session, PERSON, Selection.of_ids([a.id]), BulkAction.parse({"owner": "x"}))
    change_sets.apply(session, PERSON, cs.id)
    session.execute(ChangeSet.__table__.update().values(status="running", heartbeat_at=None))
    session.commit()
    assert change_sets.reap_stale(session, 0) == 0  # no heartbeat at all: not this reaper's
    session.execute(ChangeSet.__table__.update().values(heartbeat_at=utcnow()))
    session.commit()
    assert change_sets.reap_stale(session, -1) == 1
    assert change_sets.get(session, cs.id).status is ChangeSetStatus.failed


def test_old_previews_are_discarded(session):
    a = make_asset(session)
    cs_id = change_sets.create(session, PERSON, Selection.of_ids([a.id]), BulkAction.parse({"owner": "x"})).id
    assert change_sets.discard_previews(session, days=1) == 0
    assert change_sets.discard_previews(session, days=-1) == 1
    assert _count(session, ChangeSetItem) == 0
    session.expunge_all()
    with pytest.raises(NotFound):
        change_sets.get(session, cs_id)
