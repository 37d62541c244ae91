"""The asset service's contracts, called directly: validation, create/update/delete/restore/purge,
tags, and the snapshot the audit log and the history pages read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.factories import ACTOR, asset_data, make_asset
from webapp.models import (
    Asset,
    AssetStatus,
    AuditAction,
    AuditEvent,
    Criticality,
    Engine,
    Environment,
    Tag,
    asset_tags,
)
from webapp.services import assets, audit, crypto
from webapp.services.actor import Actor
from webapp.services.errors import InvalidState, NotFound, StaleVersion, ValidationFailed
from webapp.services.text import UNSTORABLE_MESSAGE

SECRET = "postgresql://app:s3cret-pw@db1.example.com:5432/app"
PERSON = Actor(user_id=None, label="alice@example.com")  # a manual edit (is_manual=True)


def _events(session, asset_id, action: AuditAction | None = None) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    stmt = select(AuditEvent).where(AuditEvent.entity_type == "asset",
                                    AuditEvent.entity_id == str(asset_id))
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    return list(session.scalars(stmt.order_by(AuditEvent.id)))


def _reload(session, asset_id) -> Asset:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(Asset, asset_id)


def _errors(data, *, partial: bool) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as caught:
        assets.validate(data, partial=partial)
    return caught.value.errors


# --- validate ----------------------------------------------------------------------------------

def test_create_requires_name_and_engine_but_a_partial_change_does_not():
    assert _errors({}, partial=False) == {"name": "This field is required.",
                                          "engine": "This field is required."}
    assert assets.validate({}, partial=True) == {}
    assert assets.validate({"port": 5432}, partial=True) == {"port": 5432}


@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_required_field_cannot_be_emptied_by_a_partial_change(value):
    assert _errors({"name": value}, partial=True) == {"name": "This field is required."}
    assert _errors({"engine": value if value is None else ""}, partial=True) == {
        "engine": "This field is required."}


def test_unknown_fields_are_refused_by_name_together_with_other_errors():
    errors = _errors({"name": "x", "engine": "mysql", "colour": "red", "port": 0}, partial=False)
    assert errors == {"colour": "Unknown field.", "port": "Enter a number from 1 to 65535."}


@pytest.mark.parametrize(("field", "value", "message"), [
    ("name", 42, "Enter text."),
    ("name", "x" * 201, "Enter at most 200 characters (got 201)."),
    ("host", "db\x00.example.com", UNSTORABLE_MESSAGE),
    ("engine", "postgres", "Choose one of: " + ", ".join(e.value for e in Engine) + "."),
    ("criticality", "urgent", "Choose one of: low, medium, high, critical."),
    ("port", "5432", "Enter a whole number."),
    ("port", True, "Enter a whole number."),
    ("port", 5432.0, "Enter a whole number."),
    ("port", 0, "Enter a number from 1 to 65535."),
    ("port", 65536, "Enter a number from 1 to 65535."),
    ("backup_retention_days", -1, "Enter a number from 0 to 3650."),
    ("confidence", 1.5, "Enter a number between 0 and 1."),
    ("confidence", True, "Enter a number between 0 and 1."),
    ("confidence", "0.5", "Enter a number between 0 and 1."),
    ("tls_required", "yes", "Enter true, false or leave empty."),
    ("tls_required", 1, "Enter true, false or leave empty."),
    ("last_backup_at", "yesterday", "Enter a date and time in ISO 8601 form."),
    ("last_backup_at", "2026-01-01T03:00:00", "Enter a date and time with a time zone."),
    ("last_backup_at", datetime(2026, 1, 1), "Enter a date and time with a time zone."),
    ("last_backup_at", 1700000000, "Enter a date and time with a time zone."),
    ("last_backup_at", "0001-01-01T00:00:00+01:00",
     "Enter a date and time between the years 1 and 9999 in UTC."),
    ("aliases", "db1.internal", "Enter a list of text values."),
    ("aliases", ["ok", 7], "Enter a list of text values."),
    ("aliases", ["x" * 256], "Each value may have at most 255 characters."),
    ("aliases", [f"a{i}" for i in range(51)], "Enter at most 50 values."),
    ("aliases", ["bad\x00"], UNSTORABLE_MESSAGE),
    ("tags", "pci", "Enter a list of text values."),
    ("tags", ["t" * 65], "Each value may have at most 64 characters."),
    ("tags", [f"t{i}" for i in range(51)], "Enter at most 50 values."),
    ("metadata", ["not", "an", "object"], "Enter a JSON object."),
    ("metadata", {"ratio": float("nan")}, "Numbers must be finite (no NaN or Infinity)."),
    ("metadata", {"deep": {"x": [float("inf")]}}, "Numbers must be finite (no NaN or Infinity)."),
    ("metadata", {"k\x00": 1}, UNSTORABLE_MESSAGE),
    ("metadata", {"v": ["ok", "bad\x00"]}, UNSTORABLE_MESSAGE),
])
def test_each_kind_refuses_a_bad_value_with_its_message(field, value, message):
    assert _errors({field: value}, partial=True) == {field: message}


def test_metadata_nesting_is_bounded():
    ok: dict = {}
    node = ok
    for _ in range(assets.METADATA_MAX_DEPTH - 1):
        node["n"] = {}
        node = node["n"]
    assert assets.validate({"metadata": ok}, partial=True) == {"metadata": ok}
    node["n"] = {"n": {}}
    assert _errors({"metadata": ok}, partial=True) == {
        "metadata": f"Nest at most {assets.METADATA_MAX_DEPTH} levels deep."}


def test_values_are_cleaned():
    cleaned = assets.validate({
        "name": "  orders  ",
        "engine": "mysql",
        "port": "",
        "host": "   ",
        "criticality": "high",
        "tls_required": None,
        "last_backup_at": "2026-11-01T03:00:00+01:00",
        "confidence": 1,
        "metadata": None,
        "aliases": None,
    }, partial=False)
    assert cleaned == {
        "name": "orders",
        "engine": Engine.mysql,
        "port": None,
        "host": None,
        "criticality": Criticality.high,
        "tls_required": None,
        "last_backup_at": datetime(2026, 11, 1, 2, 0, tzinfo=UTC),
        "confidence": 1.0,
        "metadata": {},
        "aliases": [],
    }
    assert isinstance(cleaned["confidence"], float)


@pytest.mark.parametrize("empty", [None, ""])
def test_not_null_fields_take_their_default_when_emptied(empty):
    cleaned = assets.validate({"environment": empty, "status": empty, "source": empty},
                              partial=True)
    assert cleaned == {"environment": Environment.unknown, "status": AssetStatus.active,
                       "source": "manual"}
    # a nullable choice stays empty
    assert assets.validate({"criticality": empty}, partial=True) == {"criticality": None}


def test_tags_are_lower_cased_sorted_and_deduplicated():
    cleaned = assets.validate({"tags": ["PCI", " team=Payments ", "pci", "", "Backup", "backup"]},
                              partial=True)
    assert cleaned == {"tags": ["backup", "pci", "team=payments"]}
    assert assets.validate({"tags": None}, partial=True) == {"tags": []}


def test_aliases_are_stripped_and_deduplicated_keeping_their_order_and_case():
    cleaned = assets.validate({"aliases": ["db2.internal", " 10.0.0.5 ", "", "db2.internal",
                                           "DB2.internal"]}, partial=True)
    assert cleaned == {"aliases": ["db2.internal", "10.0.0.5", "DB2.internal"]}


# --- create ------------------------------------------------------------------------------------

def test_create_stores_the_asset_at_version_1_with_its_search_text(session):
    asset = make_asset(session, name="Orders-DB", host="DB7.Example.com", database_name="orders",
                       owner="Team-A@example.com", aliases=["Replica.Example.com"],
                       tags=["PCI", "gold"], connection_string=SECRET)
    stored = _reload(session, asset.id)
    assert stored.version == 1
    assert stored.name == "Orders-DB" and stored.engine is Engine.postgresql
    assert stored.environment is Environment.production and stored.status is AssetStatus.active
    assert stored.source == "manual" and stored.locked_fields == []
    assert [t.name for t in stored.tags] == ["gold", "pci"]
    assert stored.search_text == (
        "orders-db db7.example.com orders team-a@example.com replica.example.com gold pci")
    # the secret is stored encrypted, and decrypts back
    assert stored.connection_string_encrypted and SECRET not in stored.connection_string_encrypted
    assert crypto.decrypt(session, stored.connection_string_encrypted) == SECRET


def test_create_applies_not_null_defaults(session):
    asset = assets.create(session, ACTOR, {"name": "bare", "engine": "redis",
                                           "environment": "", "status": None})
    stored = _reload(session, asset.id)
    assert stored.environment is Environment.unknown
    assert stored.status is AssetStatus.active
    assert stored.search_text == "bare"


def test_create_audits_every_set_field_with_the_secret_masked(session):
    asset = make_asset(session, name="audited", tags=["pci"], connection_string=SECRET,
                       metadata={"team": "core"})
    [event] = _events(session, asset.id)
    assert event.action == AuditAction.create
    assert event.actor_label == ACTOR.label
    changes = event.changes
    assert changes["version"] == [None, 1]
    assert changes["name"] == [None, "audited"]
    assert changes["engine"] == [None, "postgresql"]
    assert changes["port"] == [None, 5432]
    assert changes["tags"] == [None, ["pci"]]
    assert changes["metadata"] == [None, {"team": "core"}]
    assert changes["connection_string"] == [None, audit.MASK]
    # empty fields are not listed
    assert "criticality" not in changes and "aliases" not in changes
    stored = session.execute(select(AuditEvent.changes).where(AuditEvent.id == event.id)).scalar_one()
    assert "s3cret" not in str(stored)


def test_create_writes_the_asset_and_its_event_in_one_transaction(session):
    asset = assets.create(session, ACTOR, asset_data(name="pending"), commit=False)
    # flushed together in the caller's transaction ...
    assert session.scalar(select(func.count()).select_from(Asset)) == 1
    assert len(_events(session, asset.id, AuditAction.create)) == 1
    # ... so a rollback leaves neither
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Asset)) == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_create_refuses_invalid_data_and_writes_nothing(session):
    with pytest.raises(ValidationFailed) as caught:
        assets.create(session, ACTOR, {"name": "", "engine": "nope"})
    assert set(caught.value.errors) == {"name", "engine"}
    assert session.scalar(select(func.count()).select_from(Asset)) == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_create_refuses_a_cloud_resource_id_another_asset_has(session):
    arn = "arn:aws:rds:eu-west-1:123456789012:db:orders"
    make_asset(session, cloud_resource_id=arn)
    with pytest.raises(ValidationFailed) as caught:
        make_asset(session, cloud_resource_id=arn)
    assert list(caught.value.errors) == ["cloud_resource_id"]
    assert session.scalar(select(func.count()).select_from(Asset)) == 1


# --- update ------------------------------------------------------------------------------------

def test_update_audits_only_the_fields_that_changed_and_bumps_the_version(session):
    asset = make_asset(session, host="db1.example.com", port=5432, owner="team-a@example.com")
    assets.update(session, ACTOR, asset.id,
                  {"host": "db1.example.com", "port": 6432, "owner": "team-b@example.com"},
                  expected_version=1)
    stored = _reload(session, asset.id)
    assert stored.version == 2
    assert stored.port == 6432 and stored.owner == "team-b@example.com"
    assert "team-b@example.com" in stored.search_text
    [event] = _events(session, asset.id, AuditAction.update)
    assert event.changes == {
        "port": [5432, 6432],
        "owner": ["team-a@example.com", "team-b@example.com"],
        "version": [1, 2],
    }


def test_an_update_that_changes_nothing_writes_no_event_and_keeps_the_version(session):
    asset = make_asset(session, port=5432, tags=["pci"])
    assets.update(session, ACTOR, asset.id, {"port": 5432, "tags": ["PCI"]}, expected_version=1)
    assert _reload(session, asset.id).version == 1
    assert _events(session, asset.id, AuditAction.update) == []


def test_a_stale_expected_version_raises_and_changes_nothing(session):
    asset = make_asset(session, port=5432)
    assets.update(session, ACTOR, asset.id, {"port": 5433}, expected_version=1)
    with pytest.raises(StaleVersion) as caught:
        assets.update(session, ACTOR, asset.id, {"port": 9999}, expected_version=1)
    assert caught.value.current.id == asset.id and caught.value.current.version == 2
    stored = _reload(session, asset.id)
    assert stored.port == 5433 and stored.version == 2
    assert len(_events(session, asset.id, AuditAction.update)) == 1


def test_expected_version_none_skips_the_check(session):
    asset = make_asset(session)
    assets.update(session, ACTOR, asset.id, {"port": 1111}, expected_version=1)
    assets.update(session, ACTOR, asset.id, {"port": 2222}, expected_version=None)
    assert _reload(session, asset.id).version == 3


def test_update_validates_as_a_partial_change(session):
    asset = make_asset(session)
    with pytest.raises(ValidationFailed) as caught:
        assets.update(session, ACTOR, asset.id, {"port": -1, "bogus": 1}, expected_version=1)
    assert set(caught.value.errors) == {"port", "bogus"}
    assert _reload(session, asset.id).version == 1


def test_manual_edits_lock_the_fields_they_change_except_tags_notes_and_the_secret(session):
    asset = make_asset(session)
    assets.update(session, PERSON, asset.id,
                  {"owner": "dba@example.com", "port": 6000, "tags": ["pci"], "notes": "hi",
                   "connection_string": SECRET}, expected_version=1)
    stored = _reload(session, asset.id)
    assert stored.locked_fields == ["owner", "port"]
    assert stored.field_sources == {f: "manual" for f in
                                    ("connection_string", "notes", "owner", "port", "tags")}
    # a later manual edit adds to the locks
    assets.update(session, PERSON, asset.id, {"region": "eu-west-1"}, expected_version=2)
    assert _reload(session, asset.id).locked_fields == ["owner", "port", "region"]


def test_system_edits_do_not_lock_fields(session):
    asset = make_asset(session)
    assets.update(session, Actor.system("import"), asset.id, {"owner": "dba@example.com"},
                  expected_version=1)
    stored = _reload(session, asset.id)
    assert stored.locked_fields == []
    assert not stored.field_sources


def test_update_of_the_connection_string_is_audited_masked(session):
    asset = make_asset(session)
    assets.update(session, ACTOR, asset.id, {"connection_string": SECRET}, expected_version=1)
    assets.update(session, ACTOR, asset.id, {"connection_string": SECRET + "?ssl=1"},
                  expected_version=2)
    first, second = _events(session, asset.id, AuditAction.update)
    assert first.changes["connection_string"] == [None, audit.MASK]
    assert second.changes["connection_string"] == [audit.MASK, audit.MASK]
    # the same secret again is no change
    assets.update(session, ACTOR, asset.id, {"connection_string": SECRET + "?ssl=1"},
                  expected_version=3)
    assert _reload(session, asset.id).version == 3


def test_update_records_who_changed_it(session, make_user):
    user = make_user("analyst")
    asset = make_asset(session)
    person = Actor(user_id=user.id, label=user.email)
    assets.update(session, person, asset.id, {"notes": "checked"}, expected_version=1)
    stored = _reload(session, asset.id)
    assert stored.updated_by == user.id
    [event] = _events(session, asset.id, AuditAction.update)
    assert event.actor_id == user.id and event.actor_label == user.email


def test_update_of_an_unknown_or_malformed_id_is_not_found(session):
    with pytest.raises(NotFound):
        assets.update(session, ACTOR, uuid.uuid4(), {"port": 1}, expected_version=None)
    with pytest.raises(NotFound):
        assets.update(session, ACTOR, "not-a-uuid", {"port": 1}, expected_version=None)


# --- delete, restore, purge --------------------------------------------------------------------

def test_delete_moves_the_asset_to_the_trash(session):
    asset = make_asset(session)
    assets.delete(session, ACTOR, asset.id, expected_version=1)
    stored = _reload(session, asset.id)
    assert stored.deleted_at is not None and stored.version == 2
    with pytest.raises(NotFound):
        assets.get(session, asset.id, include_deleted=False)
    assert assets.get(session, asset.id).id == asset.id
    [event] = _events(session, asset.id, AuditAction.delete)
    assert event.changes["version"] == [1, 2]
    assert event.changes["deleted_at"][0] is None
    assert datetime.fromisoformat(event.changes["deleted_at"][1]) == stored.deleted_at


def test_delete_twice_or_with_a_stale_version_is_refused(session):
    asset = make_asset(session)
    assets.update(session, ACTOR, asset.id, {"port": 1}, expected_version=1)
    with pytest.raises(StaleVersion):
        assets.delete(session, ACTOR, asset.id, expected_version=1)
    assert _reload(session, asset.id).deleted_at is None
    assets.delete(session, ACTOR, asset.id)
    with pytest.raises(InvalidState):
        assets.delete(session, ACTOR, asset.id)
    assert len(_events(session, asset.id, AuditAction.delete)) == 1


def test_a_trashed_asset_cannot_be_edited(session):
    asset = make_asset(session)
    assets.delete(session, ACTOR, asset.id)
    with pytest.raises(InvalidState):
        assets.update(session, ACTOR, asset.id, {"port": 1}, expected_version=None)
    with pytest.raises(InvalidState):
        assets.add_tag(session, ACTOR, asset.id, "pci")


def test_restore_brings_the_asset_back(session):
    asset = make_asset(session)
    assets.delete(session, ACTOR, asset.id)
    assets.restore(session, ACTOR, asset.id)
    stored = _reload(session, asset.id)
    assert stored.deleted_at is None and stored.deleted_by is None and stored.version == 3
    assert assets.get(session, asset.id, include_deleted=False).id == asset.id
    [event] = _events(session, asset.id, AuditAction.restore)
    assert event.changes["deleted_at"][1] is None
    assert event.changes["version"] == [2, 3]
    with pytest.raises(InvalidState):
        assets.restore(session, ACTOR, asset.id)


def test_purge_needs_the_trash_and_keeps_the_history(session):
    asset = make_asset(session, name="doomed", tags=["pci"], connection_string=SECRET)
    with pytest.raises(InvalidState):
        assets.purge(session, ACTOR, asset.id)
    assets.delete(session, ACTOR, asset.id)
    assets.purge(session, ACTOR, asset.id)
    session.expire_all()
    assert session.get(Asset, asset.id) is None
    assert session.scalar(select(func.count()).select_from(asset_tags)) == 0
    assert session.scalar(select(Tag.name)) == "pci"  # the tag itself stays
    actions = [e.action for e in _events(session, asset.id)]
    assert actions == [AuditAction.create, AuditAction.delete, AuditAction.purge]
    purge = _events(session, asset.id, AuditAction.purge)[0]
    assert purge.message == "doomed"
    assert purge.changes["name"] == ["doomed", None]
    assert purge.changes["tags"] == [["pci"], None]
    assert purge.changes["connection_string"] == [audit.MASK, None]
    with pytest.raises(NotFound):
        assets.purge(session, ACTOR, asset.id)


# --- tags --------------------------------------------------------------------------------------

def test_add_tag_normalises_and_audits(session):
    asset = make_asset(session, tags=["gold"])
    assets.add_tag(session, ACTOR, asset.id, "  PCI ")
    stored = _reload(session, asset.id)
    assert [t.name for t in stored.tags] == ["gold", "pci"]
    assert stored.version == 2 and "pci" in stored.search_text
    [event] = _events(session, asset.id, AuditAction.update)
    assert event.changes == {"tags": [["gold"], ["gold", "pci"]], "version": [1, 2]}
    # adding a tag it has is no change
    assets.add_tag(session, ACTOR, asset.id, "Pci")
    assert _reload(session, asset.id).version == 2


def test_two_assets_share_one_tag_row(session):
    a = make_asset(session)
    b = make_asset(session)
    assets.add_tag(session, ACTOR, a.id, "shared")
    assets.add_tag(session, ACTOR, b.id, "SHARED")
    assert session.scalar(select(func.count()).select_from(Tag)) == 1
    assert session.scalar(select(func.count()).select_from(asset_tags)) == 2


@pytest.mark.parametrize(("name", "message"), [
    ("   ", "Enter a tag name."),
    ("t" * 65, "Each value may have at most 64 characters."),
    ("bad\x00", UNSTORABLE_MESSAGE),
])
def test_add_tag_refuses_a_bad_name_under_the_tag_field(session, name, message):
    asset = make_asset(session)
    with pytest.raises(ValidationFailed) as caught:
        assets.add_tag(session, ACTOR, asset.id, name)
    assert caught.value.errors == {"tag": message}
    assert _reload(session, asset.id).version == 1


def test_remove_tag(session):
    asset = make_asset(session, tags=["gold", "pci"])
    assets.remove_tag(session, ACTOR, asset.id, "pci")
    stored = _reload(session, asset.id)
    assert [t.name for t in stored.tags] == ["gold"]
    assert "pci" not in stored.search_text
    [event] = _events(session, asset.id, AuditAction.update)
    assert event.changes["tags"] == [["gold", "pci"], ["gold"]]
    with pytest.raises(NotFound):
        assets.remove_tag(session, ACTOR, asset.id, "pci")
    assert _reload(session, asset.id).version == 2


def test_remove_tag_reads_the_name_as_adding_stores_it(session):
    asset = make_asset(session, tags=["gold", "PCI"])  # stored as "pci"
    assets.remove_tag(session, ACTOR, asset.id, " PCI ")
    assert [t.name for t in _reload(session, asset.id).tags] == ["gold"]


# --- snapshot and field_value ------------------------------------------------------------------

def test_field_value_reads_tags_metadata_and_the_encrypted_secret(session):
    asset = make_asset(session, tags=["b", "a"], metadata={"k": [1, 2]}, connection_string=SECRET)
    stored = _reload(session, asset.id)
    assert assets.field_value(stored, "tags") == ["a", "b"]
    assert assets.field_value(stored, "metadata") == {"k": [1, 2]}
    assert assets.field_value(stored, "engine") is Engine.postgresql
    token = assets.field_value(stored, "connection_string")
    assert token == stored.connection_string_encrypted and token != SECRET


def test_snapshot_has_every_field_as_json_with_the_secret_masked(session):
    backup = datetime(2026, 3, 1, 4, 30, tzinfo=UTC)
    asset = make_asset(session, criticality="high", last_backup_at=backup, tags=["pci"],
                       connection_string=SECRET, tls_required=False)
    snap = assets.snapshot(_reload(session, asset.id))
    assert list(snap) == list(assets.FIELDS)
    assert snap["engine"] == "postgresql" and snap["criticality"] == "high"
    assert datetime.fromisoformat(snap["last_backup_at"]) == backup
    assert snap["tags"] == ["pci"]
    assert snap["tls_required"] is False
    assert snap["metadata"] == {} and snap["aliases"] == []
    assert snap["connection_string"] == audit.MASK
    assert snap["data_classification"] is None

    plain = make_asset(session)
    assert assets.snapshot(_reload(session, plain.id))["connection_string"] is None


def test_versions_rebuild_each_state_from_the_audit_log(session):
    asset = make_asset(session, port=5432)
    assets.update(session, ACTOR, asset.id, {"port": 6432}, expected_version=1)
    assets.delete(session, ACTOR, asset.id)
    history = assets.versions(session, _reload(session, asset.id))
    assert [n for n, _ in history] == [1, 2, 3]
    assert [values["port"] for _, values in history] == [5432, 6432, 6432]
    assert assets.state_at(session, asset, 1)["port"] == 5432
    with pytest.raises(NotFound):
        assets.state_at(session, asset, 9)
    assert assets.changes_since(session, asset, 1)["port"] == [5432, 6432]


def test_a_last_backup_with_an_offset_is_stored_as_the_same_instant_in_utc(session):
    asset = make_asset(session, last_backup_at="2026-05-01T14:00:00+02:00")
    stored = _reload(session, asset.id).last_backup_at
    assert stored == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert stored.utcoffset() == timedelta(0)
