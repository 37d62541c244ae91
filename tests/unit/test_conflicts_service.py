"""The review queue's service (webapp/services/conflicts.py): listing, resolving every kind of
item with every action, merging two assets, refusals, bulk resolution, and the audit trail each
resolution leaves in the same transaction as its changes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.factories import ACTOR, make_asset
from tests.review_factories import duplicate_assets, field_conflict, make_run, possible_duplicate
from webapp.models import (
    Asset,
    AssetIdentifier,
    AssetRelationship,
    AuditAction,
    AuditEvent,
    Conflict,
    ConflictKind,
    ConflictStatus,
    ImportRecord,
)
from webapp.services import (
    assets,
    audit,
    conflicts,
    identifiers,
    imports,
    relationships,
    review_bulk,
)
from webapp.services.actor import Actor
from webapp.services.errors import InvalidState, NotFound, ValidationFailed

REVIEWER = Actor(user_id=None, label="reviewer@example.com")
INCOMING = {"name": "orders-db", "engine": "postgresql", "host": "db-new.example.com",
            "port": 5432, "owner": "team-b@example.com", "environment": "staging",
            "tags": ["scanned"]}


def events(session, entity_id) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(
        select(AuditEvent).where(AuditEvent.entity_id == str(entity_id)).order_by(AuditEvent.id)))


def fresh(session, model, key):  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(model, key)


@pytest.fixture
def orders(session) -> Asset:  # type: ignore[no-untyped-def]
    """The candidate: no owner yet, a different environment and host than the record."""
    return make_asset(session, name="orders-db", host="db1.example.com", owner=None,
                      environment="production", tags=["pci"])


@pytest.fixture
def run(session):  # type: ignore[no-untyped-def]
    return make_run(session, source="cmdb")


# --- reading --------------------------------------------------------------------------------

def test_queue_is_newest_first_and_pages_by_cursor(session, orders, run):
    made = [possible_duplicate(session, orders, INCOMING, run=run, record_key=f"csv:{i}")
            for i in range(1, 6)]
    first = conflicts.list_conflicts(session, limit=2)
    assert [r.conflict.id for r in first.items] == [made[4].id, made[3].id]
    assert first.items[0].candidate_name == "orders-db" and first.items[0].run_number == run.number
    second = conflicts.list_conflicts(session, limit=2, cursor=first.next_cursor)
    third = conflicts.list_conflicts(session, limit=2, cursor=second.next_cursor)
    assert [r.conflict.id for r in second.items + third.items] == [m.id for m in made[2::-1]]
    assert third.next_cursor is None


def test_queue_filters(session, orders, run):
    other_run = make_run(session)
    low = possible_duplicate(session, orders, INCOMING, run=run, confidence=0.62)
    high = possible_duplicate(session, orders, INCOMING, run=other_run, confidence=0.88)
    fc = field_conflict(session, orders, {"owner": [None, "x@example.com"]}, run=run)
    conflicts.resolve(session, REVIEWER, low.id, "dismiss")

    def ids(**kwargs) -> set:  # type: ignore[no-untyped-def]
        return {r.conflict.id for r in conflicts.list_conflicts(session, **kwargs).items}

    assert ids() == {high.id, fc.id}  # open only by default
    assert ids(status=None) == {low.id, high.id, fc.id}
    assert ids(status=ConflictStatus.dismissed) == {low.id}
    assert ids(kind=ConflictKind.field_conflict) == {fc.id}
    assert ids(import_run_id=other_run.id) == {high.id}
    assert ids(min_confidence=0.9) == {fc.id}
    assert ids(min_confidence=0.8, kind=ConflictKind.possible_duplicate) == {high.id}


@pytest.mark.parametrize("cursor", ["nonsense", "W10", "WyJ4IiwieSJd", "%00"])
def test_a_bad_cursor_is_a_validation_error(session, cursor):
    with pytest.raises(ValidationFailed) as exc:
        conflicts.list_conflicts(session, cursor=cursor)
    assert "cursor" in exc.value.errors


def test_get_open_count_and_neighbours(session, orders, run):
    a, b, c, d = (possible_duplicate(session, orders, INCOMING, run=run, record_key=f"csv:{i}")
                  for i in range(1, 5))
    with pytest.raises(NotFound):
        conflicts.get(session, "not-a-uuid")
    with pytest.raises(NotFound):
        conflicts.get(session, "00000000-0000-0000-0000-000000000000")
    assert conflicts.open_count(session) == 4
    conflicts.resolve(session, REVIEWER, c.id, "dismiss")
    assert conflicts.open_count(session) == 3
    # queue order is d, c, b, a (newest first); c is resolved and skipped
    around = conflicts.neighbours(session, conflicts.get(session, b.id))
    assert (around.previous, around.next) == (d.id, a.id)
    around = conflicts.neighbours(session, conflicts.get(session, d.id))
    assert (around.previous, around.next) == (None, b.id)
    assert around.after_resolving == b.id
    last = conflicts.neighbours(session, conflicts.get(session, a.id))
    assert (last.previous, last.next, last.after_resolving) == (b.id, None, b.id)


def test_comparison_marks_differences_and_default_choices(session, orders, run):
    item = possible_duplicate(session, orders, INCOMING, run=run)
    review = conflicts.compare(session, item)
    rows = {r.field: r for r in review.rows}
    assert not rows["name"].differs and not rows["port"].differs
    assert rows["host"].differs and rows["host"].default == "current"  # both set: keep current
    assert rows["owner"].differs and rows["owner"].default == "incoming"  # empty now: take it
    assert rows["environment"].current == "production" and rows["environment"].incoming == "staging"
    assert review.defaults() == {"host": "current", "owner": "incoming", "environment": "current",
                                 "tags": "current"}
    assert review.can_create


# --- possible duplicate of an incoming record -----------------------------------------------

def test_merge_takes_incoming_only_where_current_is_empty_by_default(session, orders, run):
    item = possible_duplicate(session, orders, INCOMING, run=run, record_key="csv:7")
    before = orders.version
    resolved = conflicts.resolve(session, REVIEWER, item.id, "merge")

    asset = fresh(session, Asset, orders.id)
    assert asset.owner == "team-b@example.com"  # was empty: taken
    assert asset.host == "db1.example.com" and asset.environment.value == "production"  # kept
    assert asset.version == before + 1
    assert asset.field_sources == {"owner": "manual"}
    assert resolved.status == ConflictStatus.merged and resolved.result_asset_id == orders.id
    assert resolved.resolution == {"action": "merge", "fields": {
        "host": "current", "owner": "incoming", "environment": "current", "tags": "current"}}
    assert resolved.resolved_at is not None
    # the flagged record is now a sighting of the candidate
    record = session.scalar(select(ImportRecord).where(ImportRecord.conflict_id == item.id))
    assert record.asset_id == orders.id
    assert [s.key for s in imports.sightings(session, orders.id)] == ["csv:7"]
    assert asset.last_import_id == run.id and asset.last_seen_at is not None


def test_merge_with_chosen_fields_and_its_audit_events(session, orders, run):
    item = possible_duplicate(session, orders, INCOMING, run=run)
    conflicts.resolve(session, REVIEWER, item.id, "merge",
                      {"host": "incoming", "environment": "incoming", "owner": "current"})
    asset = fresh(session, Asset, orders.id)
    assert (asset.host, asset.environment.value, asset.owner) == (
        "db-new.example.com", "staging", None)
    assert asset.field_sources == {"host": "manual", "environment": "manual"}
    update, = [e for e in events(session, orders.id) if e.action == AuditAction.update]
    assert update.changes["host"] == ["db1.example.com", "db-new.example.com"]
    assert update.changes["version"] == [1, 2]
    assert update.actor_label == "reviewer@example.com"
    resolve, = events(session, item.id)
    assert resolve.action == AuditAction.resolve and resolve.entity_type == "conflict"
    assert resolve.changes["status"] == ["open", "merged"]
    assert resolve.changes["resolution"][1]["fields"]["host"] == "incoming"
    assert resolve.changes["result_asset_id"] == [None, str(orders.id)]
    # the asset's change comes right before the resolution: one transaction, one chain
    assert resolve.id == update.id + 1 and resolve.prev_hash == update.hash
    assert audit.verify(session).ok
    # the new host is an identifier of the asset now
    assert identifiers.endpoint_key("db-new.example.com", 5432) in session.scalars(
        select(AssetIdentifier.key).where(AssetIdentifier.asset_id == orders.id)).all()


def test_create_makes_a_new_asset_from_the_record(session, orders, run):
    item = possible_duplicate(session, orders, INCOMING, run=run, record_key="csv:3")
    resolved = conflicts.resolve(session, REVIEWER, item.id, "create")
    new = fresh(session, Asset, resolved.result_asset_id)
    assert new.id != orders.id
    assert (new.name, new.host, new.owner, new.source) == (
        "orders-db", "db-new.example.com", "team-b@example.com", "cmdb")
    assert [t.name for t in new.tags] == ["scanned"]
    assert new.first_seen_at is not None and new.last_import_id == run.id
    assert resolved.status == ConflictStatus.created
    assert [s.key for s in imports.sightings(session, new.id)] == ["csv:3"]
    assert [e.action for e in events(session, new.id)] == [AuditAction.create]
    assert [e.action for e in events(session, item.id)] == [AuditAction.resolve]
    assert fresh(session, Asset, orders.id).version == 1  # the candidate is untouched
    assert audit.verify(session).ok


def test_dismiss_changes_nothing_but_the_item(session, orders, run):
    item = possible_duplicate(session, orders, INCOMING, run=run)
    before = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    resolved = conflicts.resolve(session, REVIEWER, item.id, "dismiss")
    assert resolved.status == ConflictStatus.dismissed and resolved.result_asset_id is None
    assert fresh(session, Asset, orders.id).version == 1
    new_events = session.scalars(select(AuditEvent).where(AuditEvent.id > before)).all()
    assert [(e.action, e.entity_type) for e in new_events] == [(AuditAction.resolve, "conflict")]
    assert session.scalar(select(ImportRecord.asset_id).where(ImportRecord.conflict_id == item.id)) is None


# --- possible duplicate of two existing assets ----------------------------------------------

def test_merging_two_assets_moves_everything_to_the_survivor(session, run):
    survivor = make_asset(session, name="billing", host="db7.example.com", port=5432, owner=None,
                          tags=["pci"], aliases=["billing.internal"])
    other = make_asset(session, name="billing-old", host="10.0.0.7", port=6432, owner="ops@example.com",
                       tags=["legacy", "pci"], cloud_resource_id="arn:aws:rds:eu-west-1:1:db:billing",
                       connection_string="postgresql://app:pw@10.0.0.7/billing")
    item = duplicate_assets(session, survivor, other)
    # the other's sighting and a review item about it
    record = ImportRecord(run_id=run.id, seq=1, key="nmap:10.0.0.7:6432/tcp", outcome="created",
                          asset_id=other.id)
    session.add(record)
    session.commit()
    about_other = field_conflict(session, other, {"environment": ["production", "staging"]})
    other_keys = set(session.scalars(select(AssetIdentifier.key).where(AssetIdentifier.asset_id == other.id)))

    resolved = conflicts.resolve(session, REVIEWER, item.id, "merge", {"name": "current"})
    session.expire_all()
    kept, gone = session.get(Asset, survivor.id), session.get(Asset, other.id)
    assert resolved.status == ConflictStatus.merged and resolved.result_asset_id == survivor.id
    # chosen and default fields: empty ones filled, set ones kept
    assert kept.name == "billing" and kept.owner == "ops@example.com" and kept.port == 5432
    assert kept.cloud_resource_id == "arn:aws:rds:eu-west-1:1:db:billing"
    assert kept.has_connection_string
    # tags and aliases of both, the other's host too
    assert [t.name for t in kept.tags] == ["legacy", "pci"]
    assert kept.aliases == ["billing.internal", "10.0.0.7"]
    # identifiers, sightings and review items moved
    keys = set(session.scalars(select(AssetIdentifier.key).where(AssetIdentifier.asset_id == kept.id)))
    assert other_keys <= keys  # ep:10.0.0.7:6432 finds the survivor now
    assert not session.scalars(select(AssetIdentifier).where(AssetIdentifier.asset_id == gone.id)).all()
    assert session.get(ImportRecord, record.id).asset_id == kept.id
    assert session.get(Conflict, about_other.id).candidate_id == kept.id
    # the other is soft-deleted, merged into the survivor, and its cloud id released
    assert gone.deleted_at is not None and gone.merged_into == kept.id
    assert gone.cloud_resource_id is None
    # one merge event per asset, then the resolution
    survivor_event, = [e for e in events(session, kept.id) if e.action == AuditAction.merge]
    assert survivor_event.changes["merged_from"] == [None, str(other.id)]
    assert survivor_event.changes["tags"] == [["pci"], ["legacy", "pci"]]
    assert survivor_event.changes["connection_string"] == [None, "***"]
    other_event, = [e for e in events(session, gone.id) if e.action == AuditAction.merge]
    assert other_event.changes["merged_into"] == [None, str(kept.id)]
    assert other_event.changes["deleted_at"][0] is None
    assert [e.action for e in events(session, item.id)] == [AuditAction.resolve]
    assert audit.verify(session).ok


def test_merge_assets_when_nothing_differs_still_records_the_merge(session):
    a = make_asset(session, name="same", host="h.example.com", port=1)
    b = make_asset(session, name="same", host="h.example.com", port=1)
    conflicts.merge_assets(session, REVIEWER, survivor_id=a.id, other_id=b.id)
    merge, = [e for e in events(session, a.id) if e.action == AuditAction.merge]
    assert merge.changes == {"merged_from": [None, str(b.id)]}
    assert fresh(session, Asset, a.id).version == 1
    assert fresh(session, Asset, b.id).merged_into == a.id


def test_merge_assets_moves_the_others_relationships_to_the_survivor(session):
    a = make_asset(session, name="orders", host="h.example.com", port=1)
    b = make_asset(session, name="orders", host="h.example.com", port=1)
    app = make_asset(session, name="app")
    relationships.create(session, REVIEWER, source_id=app.id, target_id=b.id, kind="depends_on")
    conflicts.merge_assets(session, REVIEWER, survivor_id=a.id, other_id=b.id)
    session.expire_all()
    [rel] = session.scalars(select(AssetRelationship)).all()
    assert (rel.source_id, rel.target_id) == (app.id, a.id)
    assert [e.action for e in events(session, a.id)][-2:] == [AuditAction.merge, AuditAction.link]


def test_merge_assets_refusals(session):
    a = make_asset(session, name="a")
    b = make_asset(session, name="b")
    with pytest.raises(ValidationFailed):
        conflicts.merge_assets(session, REVIEWER, survivor_id=a.id, other_id=a.id)
    with pytest.raises(ValidationFailed) as exc:
        conflicts.merge_assets(session, REVIEWER, survivor_id=a.id, other_id=b.id,
                               fields={"name": "both", "colour": "current"})
    assert set(exc.value.errors) == {"name", "colour"}
    assets.delete(session, ACTOR, b.id)
    with pytest.raises(InvalidState, match="trash"):
        conflicts.merge_assets(session, REVIEWER, survivor_id=a.id, other_id=b.id)


def test_two_assets_cannot_be_created_and_dismiss_keeps_them_apart(session):
    a, b = make_asset(session, name="a"), make_asset(session, name="b")
    item = duplicate_assets(session, a, b)
    with pytest.raises(ValidationFailed) as exc:
        conflicts.resolve(session, REVIEWER, item.id, "create")
    assert "Dismiss keeps them apart" in exc.value.errors["action"]
    assert fresh(session, Conflict, item.id).status == ConflictStatus.open
    conflicts.resolve(session, REVIEWER, item.id, "dismiss")
    assert fresh(session, Asset, b.id).deleted_at is None
    assert fresh(session, Conflict, item.id).status == ConflictStatus.dismissed


# --- field conflicts ------------------------------------------------------------------------

def test_field_conflict_merge_keeps_current_unless_chosen(session, orders, run):
    item = field_conflict(session, orders, {"environment": ["production", "staging"],
                                            "owner": [None, "ops@example.com"]}, run=run)
    resolved = conflicts.resolve(session, REVIEWER, item.id, "merge")
    assert resolved.status == ConflictStatus.merged
    assert fresh(session, Asset, orders.id).version == 1  # the defaults take nothing
    assert resolved.resolution["fields"] == {"environment": "current", "owner": "current"}

    again = field_conflict(session, orders, {"environment": ["production", "staging"]}, run=run)
    conflicts.resolve(session, REVIEWER, again.id, "merge", {"environment": "incoming"})
    asset = fresh(session, Asset, orders.id)
    assert asset.environment.value == "staging" and asset.version == 2
    assert asset.field_sources == {"environment": "manual"}
    assert [e.action for e in events(session, orders.id)][-1] == AuditAction.update


def test_field_conflict_create_is_refused_and_dismiss_keeps_current(session, orders):
    item = field_conflict(session, orders, {"environment": ["production", "staging"]})
    with pytest.raises(ValidationFailed) as exc:
        conflicts.resolve(session, REVIEWER, item.id, "create")
    assert "Merge or Dismiss" in exc.value.errors["action"]
    with pytest.raises(ValidationFailed) as exc:
        conflicts.resolve(session, REVIEWER, item.id, "merge", {"owner": "incoming"})
    assert exc.value.errors == {"owner": "This item does not ask about this field."}
    conflicts.resolve(session, REVIEWER, item.id, "dismiss")
    assert fresh(session, Asset, orders.id).environment.value == "production"


# --- refusals -------------------------------------------------------------------------------

def test_resolving_twice_is_a_conflict(session, orders, run):
    item = possible_duplicate(session, orders, INCOMING, run=run)
    conflicts.resolve(session, REVIEWER, item.id, "dismiss")
    with pytest.raises(InvalidState, match="already resolved") as exc:
        conflicts.resolve(session, REVIEWER, item.id, "merge")
    assert exc.value.status == 409
    assert fresh(session, Conflict, item.id).status == ConflictStatus.dismissed


@pytest.mark.parametrize("action,fields,errors", [
    ("approve", None, {"action"}),
    ("merge", {"owner": "theirs"}, {"owner"}),
    ("merge", {"colour": "incoming"}, {"colour"}),
    ("merge", {"source": "incoming"}, {"source"}),
    ("merge", {"region": "incoming"}, {"region"}),  # the record has no region
    ("merge", ["owner"], {"fields"}),
])
def test_bad_actions_and_choices_are_validation_errors(session, orders, run, action, fields, errors):
    item = possible_duplicate(session, orders, INCOMING, run=run)
    with pytest.raises(ValidationFailed) as exc:
        conflicts.resolve(session, REVIEWER, item.id, action, fields)
    assert set(exc.value.errors) == errors
    assert fresh(session, Conflict, item.id).status == ConflictStatus.open
    assert fresh(session, Asset, orders.id).version == 1


def test_a_candidate_that_left_meanwhile_is_a_clear_conflict(session, orders, run):
    item = possible_duplicate(session, orders, INCOMING, run=run)
    assets.delete(session, ACTOR, orders.id)
    with pytest.raises(InvalidState, match="moved to the trash"):
        conflicts.resolve(session, REVIEWER, item.id, "merge")
    # creating or dismissing does not touch the candidate
    assert conflicts.resolve(session, REVIEWER, item.id, "dismiss").status == ConflictStatus.dismissed

    survivor = make_asset(session, name="survivor")
    candidate = make_asset(session, name="candidate")
    item = possible_duplicate(session, candidate, INCOMING, run=run)
    conflicts.merge_assets(session, REVIEWER, survivor_id=survivor.id, other_id=candidate.id)
    # review items about a merged-away asset move to the survivor...
    assert fresh(session, Conflict, item.id).candidate_id == survivor.id
    # ...except one pointing at it from elsewhere (made now, by hand): it says so
    stray = possible_duplicate(session, candidate, INCOMING, run=run)
    with pytest.raises(InvalidState, match="was merged into another asset"):
        conflicts.resolve(session, REVIEWER, stray.id, "merge")


def test_a_failure_mid_resolution_leaves_neither_change_nor_event(session, orders, run, monkeypatch):
    item = possible_duplicate(session, orders, INCOMING, run=run)
    events_before = session.query(AuditEvent).count()
    real = audit.record

    def failing(session_, actor, action, *args, **kwargs):  # type: ignore[no-untyped-def]
        if action == AuditAction.resolve:
            raise RuntimeError("disk full")
        return real(session_, actor, action, *args, **kwargs)

    monkeypatch.setattr(audit, "record", failing)
    with pytest.raises(RuntimeError):
        conflicts.resolve(session, REVIEWER, item.id, "merge", {"host": "incoming"})
    monkeypatch.undo()
    session.expire_all()
    assert session.get(Asset, orders.id).host == "db1.example.com"
    assert session.get(Asset, orders.id).version == 1
    assert session.get(Conflict, item.id).status == ConflictStatus.open
    assert session.query(AuditEvent).count() == events_before


def test_the_audit_chain_verifies_after_resolutions(session, orders, run, runner):
    other = make_asset(session, name="other")
    conflicts.resolve(session, REVIEWER, possible_duplicate(session, orders, INCOMING, run=run).id, "merge")
    conflicts.resolve(session, REVIEWER, possible_duplicate(session, orders, INCOMING, run=run).id, "create")
    conflicts.resolve(session, REVIEWER, duplicate_assets(session, orders, other).id, "merge")
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK")


# --- bulk -----------------------------------------------------------------------------------

def test_bulk_resolve_reports_each_item_and_keeps_the_good_ones(session, orders, run):
    other = make_asset(session, name="orders-db-copy")
    dup = possible_duplicate(session, orders, INCOMING, run=run, record_key="csv:1")
    fc = field_conflict(session, orders, {"environment": ["production", "staging"]}, run=run)
    pair = duplicate_assets(session, orders, other)
    done = possible_duplicate(session, orders, INCOMING, run=run, record_key="csv:9")
    conflicts.resolve(session, REVIEWER, done.id, "dismiss")

    gone = uuid.uuid4()
    outcomes = review_bulk.bulk_resolve(session, REVIEWER, [dup.id, fc.id, pair.id, done.id, gone],
                                      "create")
    by_id = {o.id: o for o in outcomes}
    assert by_id[str(dup.id)].resolved and by_id[str(dup.id)].status == "created"
    assert not by_id[str(fc.id)].resolved and "Merge or Dismiss" in by_id[str(fc.id)].reason
    assert not by_id[str(pair.id)].resolved and "Dismiss keeps them apart" in by_id[str(pair.id)].reason
    assert not by_id[str(done.id)].resolved and "already resolved" in by_id[str(done.id)].reason
    assert by_id[str(done.id)].label == "csv:9"
    assert not by_id[str(gone)].resolved and by_id[str(gone)].reason == "No such review item."
    session.expire_all()
    assert session.get(Conflict, dup.id).status == ConflictStatus.created
    assert session.get(Conflict, fc.id).status == ConflictStatus.open

    outcomes = review_bulk.bulk_resolve(session, REVIEWER, [fc.id, pair.id], "merge")
    assert all(o.resolved for o in outcomes)
    assert fresh(session, Asset, other.id).merged_into == orders.id
    assert fresh(session, Asset, orders.id).environment.value == "production"  # defaults


def test_bulk_resolve_refuses_bad_requests_outright(session):
    with pytest.raises(ValidationFailed):
        review_bulk.bulk_resolve(session, REVIEWER, [], "dismiss")
    with pytest.raises(ValidationFailed):
        review_bulk.bulk_resolve(session, REVIEWER, ["x"], "approve")
    with pytest.raises(ValidationFailed):
        review_bulk.bulk_resolve(session, REVIEWER, [str(uuid.uuid4()) for _ in range(conflicts.BULK_MAX + 1)],
                               "dismiss")
    with pytest.raises(ValidationFailed):
        review_bulk.bulk_resolve(session, REVIEWER, ["junk"], "dismiss")


def test_list_and_resolve_with_an_old_item(session, orders, run):
    """Items opened long ago still list and resolve."""
    old = possible_duplicate(session, orders, INCOMING, run=run, age=timedelta(days=400))
    assert conflicts.list_conflicts(session).items[-1].conflict.id == old.id
    assert conflicts.resolve(session, REVIEWER, old.id, "dismiss").status == ConflictStatus.dismissed
