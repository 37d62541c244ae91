"""`Undo this import` (SPEC §5, §7): a real import run is a change set of kind `import`; undoing
it trashes the assets it created, puts back the fields it changed and removes the links it added,
as one change set of kind `undo`, refusing (and listing) the assets changed since."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.imports.helpers import run_file
from tests.review_factories import possible_duplicate
from webapp.models import (
    Asset,
    AssetIdentifier,
    AssetRelationship,
    AuditAction,
    AuditEvent,
    ChangeSet,
    ChangeSetKind,
    ChangeSetStatus,
    ConflictStatus,
    ImportRun,
)
from webapp.models.base import utcnow
from webapp.services import assets as asset_service
from webapp.services import audit, change_sets, imports
from webapp.services.actor import Actor
from webapp.services.errors import InvalidState

PERSON = Actor(user_id=None, label="analyst@example.com")
ARN = "arn:aws:rds:eu-west-1:123456789012:db:orders-a"
# what the inventory knew before: orders-a, found by its endpoint
BEFORE = json.dumps({"source": "cmdb", "assets": [
    {"name": "orders-a", "engine": "mysql", "host": "orders-a.example.com", "port": 3306, "owner": "team-a"},
]})
# the file to undo: orders-a again (now with its ARN and encryption: an update), its new read
# replica orders-b (a create) and the link between them
RDS = json.dumps({"DBInstances": [
    {"DBInstanceIdentifier": "orders-a", "DBInstanceArn": ARN, "Engine": "mysql", "StorageEncrypted": True,
     "ReadReplicaDBInstanceIdentifiers": ["orders-b"],
     "Endpoint": {"Address": "orders-a.example.com", "Port": 3306}},
    {"DBInstanceIdentifier": "orders-b", "Engine": "mysql", "ReadReplicaSourceDBInstanceIdentifier": "orders-a",
     "Endpoint": {"Address": "orders-b.example.com", "Port": 3306}},
]})


def _asset(session, name: str) -> Asset:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalars(select(Asset).where(Asset.name == name)).one()


def _links(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return len(session.scalars(select(AssetRelationship.id)).all())


def _imported(session) -> ImportRun:  # type: ignore[no-untyped-def]
    run_file(session, BEFORE, "cmdb.json")
    run = run_file(session, RDS, "rds.json")
    assert run.status.value == "succeeded" and (run.created, run.updated, run.linked) == (1, 1, 1)
    return run


def _undo(session, run: ImportRun) -> ChangeSet:  # type: ignore[no-untyped-def]
    reverse = change_sets.undo(session, PERSON, run.change_set_id)
    return change_sets.execute(session, reverse.id)


def test_a_real_run_is_a_change_set_every_event_of_it_carries(session):
    run = _imported(session)
    cs = change_sets.get(session, run.change_set_id)
    assert cs.kind is ChangeSetKind.import_ and cs.status is ChangeSetStatus.succeeded
    assert cs.actor_label == run.label and cs.number is not None and cs.changed == 2
    assert change_sets.describe(cs.params) == f"Import #{run.number}"
    events = session.scalars(select(AuditEvent).where(AuditEvent.actor_label == run.label)).all()
    assert {e.action for e in events} == {AuditAction.create, AuditAction.update, AuditAction.link}
    assert {e.change_set_id for e in events} == {cs.id}


def test_a_dry_run_has_no_change_set(session):
    run = run_file(session, RDS, "rds.json", dry_run=True)
    assert run.status.value == "succeeded" and run.change_set_id is None
    assert session.scalars(select(ChangeSet)).all() == []


def test_undo_trashes_created_assets_puts_fields_back_and_removes_links(session):
    run = _imported(session)
    a = _asset(session, "orders-a")
    assert (a.cloud_resource_id, a.encrypted_at_rest) == (ARN, True)
    flagged = possible_duplicate(session, a, {"name": "orders-a2"}, run=run)
    undone = _undo(session, run)

    assert undone.kind is ChangeSetKind.undo and undone.status is ChangeSetStatus.succeeded, undone.error
    assert (undone.changed, undone.refused, undone.failed, undone.total) == (3, 0, 0, 3)
    assert change_sets.describe(undone.params).startswith(f"Undo of import #{run.number}")
    b, a = _asset(session, "orders-b"), _asset(session, "orders-a")
    assert b.deleted_at is not None
    assert (a.cloud_resource_id, a.encrypted_at_rest, a.owner, a.deleted_at) == (None, None, "team-a", None)
    assert not a.locked_fields  # putting back what discovery wrote is no person's edit
    keys = set(session.scalars(select(AssetIdentifier.key).where(AssetIdentifier.asset_id == a.id)))
    assert not any(k.startswith("cloud:") for k in keys) and "ep:orders-a.example.com:3306" in keys
    assert _links(session) == 0
    session.refresh(flagged)
    assert flagged.status is ConflictStatus.dismissed
    assert f"import #{run.number} was undone" in flagged.resolution["reason"]
    # every event of the undo carries its id; the chain holds
    events = session.scalars(select(AuditEvent).where(AuditEvent.change_set_id == undone.id)).all()
    assert sorted(e.action.value for e in events) == ["resolve", "undo", "undo", "unlink", "unlink"]
    assert session.scalar(select(AuditEvent.id).where(AuditEvent.actor_label == PERSON.label,
                                                     AuditEvent.change_set_id.is_(None))) is None
    assert audit.verify(session).ok
    assert change_sets.get(session, run.change_set_id).undone_by == undone.id


def test_an_asset_changed_since_is_refused_and_listed_the_rest_is_undone(session):
    run = _imported(session)
    b = _asset(session, "orders-b")
    asset_service.update(session, PERSON, b.id, {"owner": "someone"}, expected_version=b.version)
    undone = _undo(session, run)

    assert undone.status is ChangeSetStatus.succeeded
    assert (undone.changed, undone.refused) == (2, 1)
    assert [(r["name"], r["asset_id"]) for r in undone.reported] == [("orders-b", str(b.id))]
    assert f"changed since import #{run.number}" in undone.reported[0]["reason"]
    assert _asset(session, "orders-b").deleted_at is None
    assert _asset(session, "orders-a").cloud_resource_id is None
    assert _links(session) == 0


def test_an_import_is_undone_once_and_not_while_it_runs(session):
    run = _imported(session)
    _undo(session, run)
    with pytest.raises(InvalidState, match="undone already"):
        change_sets.undo(session, PERSON, run.change_set_id)
    session.execute(ChangeSet.__table__.update().where(ChangeSet.id == run.change_set_id)
                    .values(status=ChangeSetStatus.running, undone_by=None))
    session.execute(ChangeSet.__table__.update().where(ChangeSet.undo_of == run.change_set_id)
                    .values(undo_of=None))
    session.commit()
    with pytest.raises(InvalidState, match="finished"):
        change_sets.undo(session, PERSON, run.change_set_id)


def test_undoing_the_undo_puts_the_import_back(session):
    run = _imported(session)
    undone = _undo(session, run)
    again = change_sets.execute(session, change_sets.undo(session, PERSON, undone.id).id)
    assert again.status is ChangeSetStatus.succeeded and again.refused == 0, again.reported
    assert _asset(session, "orders-b").deleted_at is None
    assert _asset(session, "orders-a").cloud_resource_id == ARN
    assert _links(session) == 1
    assert audit.verify(session).ok


def test_a_run_that_changed_nothing_has_nothing_to_undo(session):
    run = _imported(session)
    again = run_file(session, RDS, "rds-again.json")
    assert again.change_set_id is not None and change_sets.get(session, again.change_set_id).changed == 0
    with pytest.raises(InvalidState, match="nothing to undo"):
        change_sets.undo(session, PERSON, again.change_set_id)
    assert run.change_set_id != again.change_set_id


def test_a_reaped_run_ends_its_change_set(session):
    run = _imported(session)
    session.execute(ImportRun.__table__.update().where(ImportRun.id == run.id).values(status="running"))
    session.execute(ChangeSet.__table__.update().where(ChangeSet.id == run.change_set_id)
                    .values(status=ChangeSetStatus.running))
    session.commit()
    assert change_sets.reap_stale(session, stale_seconds=0) == 0  # the import's reaper ends it
    assert imports.reap_stale(session, now=utcnow() + timedelta(hours=1)) == 1
    assert change_sets.get(session, run.change_set_id).status is ChangeSetStatus.failed
