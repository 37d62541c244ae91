"""Observations (SPEC §6): every value a source reports is kept, whether or not it won; a
field conflict only where a person is needed; equal-after-normalisation values are no
conflict; the open field conflicts that are observations now are superseded."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.imports.helpers import assets, count, inventory, outcomes, records, run_file
from webapp.models import (
    Asset,
    AuditAction,
    AuditEvent,
    Conflict,
    ConflictKind,
    ConflictStatus,
    Observation,
)
from webapp.services import assets as asset_service
from webapp.services import imports, observations, superseding
from webapp.services.actor import Actor

PG = {"name": "orders", "engine": "postgresql", "host": "db1.example.com", "port": 5432}


def seen(session, asset_id) -> dict[tuple[str, str], Observation]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return {(o.field, o.source): o for o in session.scalars(select(Observation).where(Observation.asset_id == asset_id))}


def csv_file(*rows: str) -> str:
    return "\n".join(["name,engine,version,host,port,environment,owner", *rows]) + "\n"


def aws_file(version: str, owner: str) -> str:
    return json.dumps({"DBInstances": [{
        "DBInstanceIdentifier": "orders", "Engine": "postgres", "EngineVersion": version,
        "DBInstanceArn": "arn:aws:rds:eu-west-1:123456789012:db:orders",
        "Endpoint": {"Address": "orders.abc.eu-west-1.rds.amazonaws.com", "Port": 5432},
        "DBInstanceStatus": "available", "TagList": [{"Key": "owner", "Value": owner}],
    }]})


def test_an_import_keeps_every_value_it_reports_with_its_source_and_run(session):
    run = run_file(session, inventory({**PG, "engine_version": "16.2", "owner": "dba",
                                       "connection_string": "postgresql://u:secret@db1/orders"}))
    [asset] = assets(session)
    kept = seen(session, asset.id)
    assert {f for f, _ in kept} == {"name", "engine", "engine_version", "host", "port", "owner"}
    assert {s for _, s in kept} == {"inventory"}  # what precedence knows an inventory-json file by
    assert kept[("owner", "inventory")].value == "dba" and kept[("port", "inventory")].value == 5432
    assert all(o.import_run_id == run.id and o.seen_at is not None for o in kept.values())
    # the secret is never kept
    assert not any("secret" in json.dumps(o.value) for o in kept.values())


def test_a_reimport_overwrites_its_source_s_observations(session):
    first = run_file(session, inventory({**PG, "owner": "dba"}))
    second = run_file(session, inventory({**PG, "owner": "dba-platform", "engine_version": "16.1"}), "again.json")
    assert outcomes(session, second) == {"json:1": "updated"}
    [asset] = assets(session)
    kept = seen(session, asset.id)
    assert len(kept) == 6  # one row per (field, source): upserted, not appended
    assert kept[("owner", "inventory")].value == "dba-platform"
    assert kept[("owner", "inventory")].import_run_id == second.id
    assert kept[("engine_version", "inventory")].import_run_id == second.id
    # a value reported again unchanged keeps the run that first reported it ("since import #1")
    assert kept[("port", "inventory")].import_run_id == first.id


def test_a_derived_name_is_no_report(session):
    run_file(session, inventory({"name": "db1.example.com:5432", "engine": "postgresql",
                                 "host": "db1.example.com", "port": 5432}))
    [asset] = assets(session)
    assert ("name", "inventory") not in seen(session, asset.id)


def test_a_lower_precedence_source_that_disagrees_is_an_observation_not_a_review_item(session):
    run_file(session, aws_file("15.4", "payments"), "rds.json")
    csv = run_file(session, csv_file("orders,postgresql,15.5,orders.abc.eu-west-1.rds.amazonaws.com,5432,"
                                     "production,payments-team"), "cmdb.csv")
    # the CMDB outranks the cloud for the owner (a business field), not for the version
    assert outcomes(session, csv) == {"csv:1": "updated"}
    assert count(session, Conflict) == 0
    [asset] = assets(session)
    assert asset.owner == "payments-team" and asset.engine_version == "15.4"
    kept = seen(session, asset.id)
    assert kept[("engine_version", "csv")].value == "15.5"  # lost, and kept
    assert kept[("engine_version", "aws")].value == "15.4"
    assert kept[("owner", "aws")].value == "payments"


def test_a_locked_field_contradicted_is_a_field_conflict(session):
    asset = asset_service.create(session, Actor.cli(), {**PG, "owner": "dba"})
    asset_service.update(session, Actor.cli(), asset.id, {"owner": "finance-dba"}, expected_version=None)
    run = run_file(session, inventory({**PG, "owner": "payments"}))
    assert outcomes(session, run) == {"json:1": "flagged"}
    [record] = records(session, run)
    conflict = session.get(Conflict, record.conflict_id)
    assert conflict.kind == ConflictKind.field_conflict
    assert conflict.fields == {"owner": ["finance-dba", "payments"]}
    assert seen(session, asset.id)[("owner", "inventory")].value == "payments"


@pytest.mark.parametrize(("locked", "incoming"), [
    ({"owner": "dba-team"}, {"owner": "dba-team@example.com"}),
    ({"host": "db1.example.com"}, {"host": "DB1.Example.COM."}),
    ({"engine_version": "8.0"}, {"engine_version": "8.0.36-log"}),
    ({"engine_version": "16"}, {"engine_version": "POSTGRES_16_2"}),
])
def test_a_locked_value_equal_after_normalisation_is_no_conflict(session, locked, incoming):
    asset = asset_service.create(session, Actor.cli(), {**PG, "name": "orders"})
    asset_service.update(session, Actor.cli(), asset.id, locked, expected_version=None)
    run = run_file(session, inventory({**PG, **incoming}))
    assert outcomes(session, run)["json:1"] in ("updated", "unchanged")
    assert count(session, Conflict) == 0
    session.expire_all()
    [(name, value)] = locked.items()
    assert getattr(session.get(Asset, asset.id), name) == value


def test_records_of_one_run_that_disagree_across_batches_ask_a_person(session):
    data = inventory({**PG, "owner": "a"}, {"name": "other", "engine": "mysql", "host": "db2.example.com",
                                            "port": 3306}, {**PG, "owner": "b"})
    run = imports.create_run(session, Actor.cli("tester"), data=data.encode(), filename="x.json",
                             source=None, dry_run=False)
    run = imports.execute(session, run.id, batch_size=1)
    assert outcomes(session, run) == {"json:1": "created", "json:2": "created", "json:3": "flagged"}
    [record] = [r for r in records(session, run) if r.key == "json:3"]
    conflict = session.get(Conflict, record.conflict_id)
    assert conflict.fields == {"owner": ["a", "b"]}
    assert conflict.reasons == ["owner: an earlier record of this import reported 'a', record json:3 reports 'b'"]


def test_two_records_that_agree_after_normalisation_do_not_disagree(session):
    run = run_file(session, inventory({**PG, "owner": "dba"}, {**PG, "owner": "DBA@example.com"}))
    assert outcomes(session, run)["json:2"] != "flagged"
    assert count(session, Conflict) == 0


def test_a_person_s_edit_is_a_manual_observation(session, make_user):
    user = make_user("analyst")
    actor = Actor(user_id=user.id, label=user.email)
    asset = asset_service.create(session, actor, {**PG, "owner": "dba"})
    asset_service.update(session, actor, asset.id, {"owner": "finance"}, expected_version=None)
    kept = seen(session, asset.id)
    assert kept[("owner", "manual")].value == "finance"
    assert kept[("owner", "manual")].reported_by == user.id and kept[("owner", "manual")].import_run_id is None
    # the system's changes are not a person's
    asset_service.update(session, Actor.system(), asset.id, {"owner": "ops"}, expected_version=None)
    assert seen(session, asset.id)[("owner", "manual")].value == "finance"


@pytest.mark.parametrize(("name", "a", "b", "same"), [
    ("owner", "dba-team", "dba-team@example.com", True),
    ("owner", "DBA-Team@Example.com", "dba-team", True),
    ("owner", "dba-team", "ops@example.com", False),
    ("owner", "a@example.com", "a@other.example", False),
    ("host", "db1.example.com.", "DB1.EXAMPLE.COM", True),
    ("host", "db1.example.com", "db2.example.com", False),
    ("engine_version", "8.0", "8.0.36-log", True),
    ("engine_version", "16", "POSTGRES_16_2", True),
    ("engine_version", "2022", "16.0.1000.6", True),
    ("engine_version", "15.2", "15.6", False),
    ("name", "Billing DB", "billing  db", True),
    ("port", 5432, 5433, False),
    ("environment", "production", "production", True),
])
def test_values_equal_after_normalisation(name, a, b, same):
    assert observations.equivalent(name, a, b) is same
    assert observations.equivalent(name, b, a) is same


# --- superseding the field conflicts that are observations now --------------------------------

def old_conflict(session, asset, run, fields, reasons):  # type: ignore[no-untyped-def]
    conflict = Conflict(kind=ConflictKind.field_conflict, candidate_id=asset.id, fields=fields,
                        confidence=1.0, reasons=reasons, incoming={}, import_run_id=run.id,
                        record_key="nmap:10.0.0.1:5432/tcp", fingerprint="x")
    session.add(conflict)
    session.commit()
    return conflict


def test_open_field_conflicts_that_are_observations_now_are_superseded(session, runner):
    asset = asset_service.create(session, Actor.cli(), {**PG, "engine_version": "15.1"})
    asset_service.update(session, Actor.cli(), asset.id, {"owner": "dba"}, expected_version=None)
    run = run_file(session, inventory({"name": "x", "engine": "mysql"}), "scan.json")
    outranked = old_conflict(session, asset, run, {"engine_version": ["15.1", "15.6"]},
                             ["engine_version was set by manual, which outranks inventory"])
    locked = old_conflict(session, asset, run, {"owner": ["dba", "ops"]}, ["owner is locked: a person set it"])
    spelled = old_conflict(session, asset, run, {"owner": ["dba", "dba@example.com"]},
                           ["owner is locked: a person set it"])
    events = count(session, AuditEvent)
    result = runner.invoke(args=["conflicts", "supersede"])
    assert result.exit_code == 0, result.output
    assert "2 field conflicts superseded" in result.output
    session.expire_all()
    assert session.get(Conflict, outranked.id).status == ConflictStatus.superseded
    assert session.get(Conflict, spelled.id).status == ConflictStatus.superseded
    assert session.get(Conflict, locked.id).status == ConflictStatus.open  # still needs a person
    new = list(session.scalars(select(AuditEvent).where(AuditEvent.id > 0).order_by(AuditEvent.id)))[events:]
    assert [(e.action, e.entity_type, e.changes["status"]) for e in new] == [
        (AuditAction.resolve, "conflict", ["open", "superseded"])] * 2
    assert {e.entity_id for e in new} == {str(outranked.id), str(spelled.id)}
    # the incoming value is kept as what the run's source reported
    assert seen(session, asset.id)[("engine_version", "inventory")].value == "15.6"
    # again: nothing to do
    assert superseding.supersede_observed(session, Actor.cli()) == 0


def test_the_queue_filters_superseded_items(session, login_as, client):
    asset = asset_service.create(session, Actor.cli(), {**PG, "engine_version": "15.1"})
    run = run_file(session, inventory({"name": "x", "engine": "mysql"}), "scan.json")
    old_conflict(session, asset, run, {"engine_version": ["15.1", "15.6"]},
                 ["engine_version was set by manual, which outranks inventory"])
    superseding.supersede_observed(session, Actor.cli())
    login_as("viewer")
    assert "orders" not in client.get("/conflicts").get_data(as_text=True).split("<main", 1)[-1]
    page = client.get("/conflicts?status=superseded").get_data(as_text=True)
    assert "superseded" in page and "orders" in page
