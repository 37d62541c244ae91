"""The import pipeline on the real database: formats, identification, idempotency, audit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.imports.helpers import (
    assets,
    audit_count,
    count,
    fixture,
    inventory,
    outcomes,
    records,
    run_file,
)
from webapp.models import (
    Asset,
    AuditAction,
    AuditEvent,
    Conflict,
    ConflictKind,
    HostBridge,
    ImportRecord,
    ImportStatus,
)
from webapp.services import assets as asset_service
from webapp.services import audit, imports
from webapp.services import settings as settings_service
from webapp.services.actor import Actor

PG = {"name": "orders", "engine": "postgresql", "host": "db1.example.com", "port": 5432}
# assets seeded from an old CMDB: a source no precedence list names, so any import outranks it
# (tests about source precedence and field conflicts are in tests/matching)
LEGACY = {"source": "legacy-cmdb"}


def seed(session, data):  # type: ignore[no-untyped-def]
    return asset_service.create(session, Actor.cli(), {**data, **LEGACY})

SIX = [
    ("inventory.json", "inventory-json", "json:1"),
    ("cmdb_export.csv", "csv", "csv:1"),
    ("nmap_sv.xml", "nmap-xml", "nmap:10.20.0.5:5432/tcp"),
    ("aws_rds_both.json", "aws-rds-json", None),
    ("gcp_sql_instances.json", "gcp-sql-json", None),
    ("azure_postgres_flexible.json", "azure-json", None),
]


@pytest.mark.parametrize(("name", "fmt", "key"), SIX)
def test_each_format_imports_and_reimports_unchanged(session, name, fmt, key):
    first = run_file(session, fixture(name), name)
    assert first.status == ImportStatus.succeeded, first.error
    assert first.format == fmt
    assert first.created > 0
    assert first.processed == first.total == len(records(session, first))
    assert first.created + first.updated + first.unchanged + first.failed + first.skipped == first.total
    if key:
        assert outcomes(session, first)[key] == "created"
    created = assets(session)
    assert len(created) == first.created
    events = audit_count(session)
    assert events == first.created + first.updated + 2 * first.linked  # links: one event per end

    again = run_file(session, fixture(name), name)
    assert again.status == ImportStatus.succeeded
    assert again.created == again.updated == 0
    assert again.unchanged == first.created + first.updated + first.unchanged
    assert audit_count(session) == events  # nothing changed, nothing audited
    assert [(a.id, a.version) for a in assets(session)] == [(a.id, a.version) for a in created]


def test_created_assets_are_audited_as_the_import_and_rebuild_in_history(session):
    run = run_file(session, fixture("inventory.json"), "inventory.json")
    events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert {e.actor_label for e in events} == {f"import #{run.number}"}
    assert {e.action for e in events} == {AuditAction.create}
    assert audit.verify(session).ok
    billing = next(a for a in assets(session) if a.name == "billing-db")
    assert billing.source == "cmdb-sync"  # inventory-json's own source label
    assert billing.last_import_id == run.id and billing.first_seen_at is not None
    [(version, values)] = asset_service.versions(session, billing)
    assert version == 1 and values["host"] == "pg-billing-01.corp.example.com"
    assert "pci" in values["tags"]


def test_dry_run_writes_no_asset_and_no_audit_event(session):
    run = run_file(session, fixture("cmdb_export.csv"), "cmdb_export.csv", dry_run=True)
    assert run.status == ImportStatus.succeeded and run.dry_run
    assert run.created > 0
    assert count(session, Asset) == 0
    assert audit_count(session) == 0
    assert count(session, HostBridge) == 0
    created = [r for r in records(session, run) if r.outcome.value == "created"]
    assert created and all(r.asset_id is None for r in created)  # would-be assets have no row


def test_dry_run_against_existing_assets_shows_updates_without_writing(session):
    asset_service.create(session, Actor.cli(), {**PG, "owner": None})
    before = audit_count(session)
    run = run_file(session, inventory({**PG, "owner": "team-a"}), dry_run=True)
    assert outcomes(session, run) == {"json:1": "updated"}
    [record] = records(session, run)
    assert record.changes["owner"] == [None, "team-a"]
    assert assets(session)[0].owner is None
    assert audit_count(session) == before


def test_match_updates_but_null_never_overwrites_and_locked_fields_stay(session):
    asset = seed(session, {**PG, "owner": "dba", "engine_version": "14"})
    # a person edits criticality: it becomes locked
    asset_service.update(session, Actor.cli(), asset.id, {"criticality": "high"}, expected_version=None)
    run = run_file(session, inventory(
        {"name": "db1.example.com:5432", "engine": "postgresql", "host": "DB1.example.com.", "port": 5432,
         "engine_version": "15", "criticality": "low", "environment": "production"},
    ))
    # the other fields are updated; the locked one is held back for a reviewer
    assert outcomes(session, run) == {"json:1": "flagged"}
    [record] = records(session, run)
    conflict = session.get(Conflict, record.conflict_id)
    assert conflict.kind == ConflictKind.field_conflict and conflict.candidate_id == asset.id
    assert conflict.fields == {"criticality": ["high", "low"]}
    assert conflict.reasons == ["criticality is locked: a person set it"]
    [updated] = assets(session)
    assert updated.id == asset.id
    assert updated.engine_version == "15" and updated.environment.value == "production"
    assert updated.owner == "dba"  # absent in the record: kept
    assert updated.criticality.value == "high"  # locked by the manual edit
    assert updated.name == "orders"  # a derived host:port name never renames an asset
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event.actor_label == f"import #{run.number}" and event.action == AuditAction.update
    assert event.changes["engine_version"] == ["14", "15"]
    assert event.changes["version"] == [2, 3]
    assert updated.version == 3


def test_two_databases_on_one_host_are_never_merged_on_the_host(session):
    pg = seed(session, PG)
    other = seed(session, {**PG, "name": "reports", "port": 5433})
    run = run_file(session, inventory(
        {**PG, "name": "orders", "owner": "a"},
        {**PG, "name": "reports", "port": 5433, "owner": "b"},
        {"name": "no-port", "engine": "postgresql", "host": "db1.example.com"},
        {"name": "mysql-on-same-host", "engine": "mysql", "host": "db1.example.com", "port": 5432},
    ))
    # the port-less record may be either database on the host: a reviewer is asked, nothing merges
    assert outcomes(session, run) == {
        "json:1": "updated", "json:2": "updated", "json:3": "flagged", "json:4": "created",
    }
    flagged = next(r for r in records(session, run) if r.key == "json:3")
    assert flagged.asset_id is None
    assert "port unknown on one side" in " ".join(session.get(Conflict, flagged.conflict_id).reasons)
    by_id = {a.id: a for a in assets(session)}
    assert by_id[pg.id].owner == "a" and by_id[other.id].owner == "b"
    assert len(by_id) == 3


def test_two_databases_on_one_port_are_told_apart_by_database_name(session):
    a = seed(session, {**PG, "database_name": "orders"})
    b = seed(session, {**PG, "name": "billing", "database_name": "billing"})
    run = run_file(session, inventory(
        {**PG, "database_name": "billing", "owner": "x"},
        {**PG, "database_name": "sales", "name": "sales"},
    ))
    assert outcomes(session, run) == {"json:1": "updated", "json:2": "created"}
    session.expire_all()
    assert session.get(Asset, b.id).owner == "x" and session.get(Asset, a.id).owner is None


def test_an_endpoint_matching_two_assets_is_flagged_not_guessed(session):
    orders = seed(session, {**PG, "database_name": "orders"})
    billing = seed(session, {**PG, "name": "billing", "database_name": "billing"})
    run = run_file(session, inventory({**PG, "name": "something", "owner": "x"}))
    assert outcomes(session, run) == {"json:1": "flagged"}
    [record] = records(session, run)
    conflict = session.get(Conflict, record.conflict_id)
    assert conflict.kind == ConflictKind.possible_duplicate
    assert conflict.candidate_id in {orders.id, billing.id} and record.asset_id is None
    assert any("ambiguous: the endpoint matches 2 assets" in r for r in conflict.reasons)
    assert all(a.owner is None for a in assets(session))
    # the same file again asks nothing new: the open item is found
    again = run_file(session, inventory({**PG, "name": "something", "owner": "x"}))
    assert records(session, again)[0].conflict_id == conflict.id
    assert count(session, Conflict) == 1


def test_cloud_resource_id_matches_whatever_the_endpoint_says(session):
    arn = "arn:aws:rds:eu-west-1:123456789012:db:orders"
    asset = seed(session, {**PG, "cloud_resource_id": arn})
    run = run_file(session, inventory(
        {"name": "orders", "engine": "postgresql", "cloud_resource_id": arn,
         "host": "orders.abc.eu-west-1.rds.amazonaws.com", "port": 5432},
    ))
    assert outcomes(session, run) == {"json:1": "updated"}
    [updated] = assets(session)
    assert updated.id == asset.id and updated.host == "orders.abc.eu-west-1.rds.amazonaws.com"
    # the new endpoint is now an identifier: an nmap-style record of it matches too
    again = run_file(session, inventory(
        {"name": "x", "engine": "postgresql", "host": "orders.abc.eu-west-1.rds.amazonaws.com", "port": 5432,
         "engine_version": "16.1"},
    ))
    assert outcomes(session, again) == {"json:1": "updated"}
    assert len(assets(session)) == 1


def test_different_cloud_ids_on_one_endpoint_are_different_assets(session):
    asset_service.create(session, Actor.cli(), {**PG, "cloud_resource_id": "arn:aws:rds:x:1:db:a"})
    run = run_file(session, inventory({**PG, "cloud_resource_id": "arn:aws:rds:x:1:db:b"}))
    assert outcomes(session, run) == {"json:1": "created"}


def test_fqdn_ip_bridge_learnt_from_nmap_joins_later_records(session):
    """nmap saw 10.20.0.5 answer as db01.corp.example.com; an asset known only by its IP on
    another port is then found from a record that names it by DNS name."""
    mysql = seed(session, {"name": "legacy-mysql", "engine": "mysql",
                                                        "host": "10.20.0.5", "port": 3307})
    scan = run_file(session, fixture("nmap_sv.xml"), "scan.xml")
    assert scan.status == ImportStatus.succeeded
    assert session.get(HostBridge, ("10.20.0.5", "db01.corp.example.com")) is not None
    run = run_file(session, inventory(
        {"name": "legacy", "engine": "mariadb", "host": "DB01.corp.example.com", "port": 3307, "owner": "ops"},
    ))
    assert outcomes(session, run) == {"json:1": "updated"}
    session.expire_all()
    found = session.get(Asset, mysql.id)
    assert found.owner == "ops"
    assert "DB01.corp.example.com" in found.aliases or "db01.corp.example.com" in [a.lower() for a in found.aliases]


def test_nmap_then_csv_by_dns_name_is_one_asset(session):
    scan = run_file(session, fixture("nmap_sv.xml"), "scan.xml")
    pg_key = "nmap:10.20.0.5:5432/tcp"
    asset_id = next(r.asset_id for r in records(session, scan) if r.key == pg_key)
    csv = "name,engine,host,port,owner\npg,postgres,pg-primary.corp.example.com,5432,dba-team\n"
    run = run_file(session, csv, "more.csv")
    [record] = records(session, run)
    assert record.outcome.value == "updated" and record.asset_id == asset_id


def test_records_repeated_in_one_file_make_one_asset(session):
    run = run_file(session, inventory({**PG, "owner": "a"}, {**PG, "owner": "a", "engine_version": "16.2"},
                                      {**PG, "owner": "a", "engine_version": "16.2"}))
    assert outcomes(session, run) == {"json:1": "created", "json:2": "updated", "json:3": "unchanged"}
    [asset] = assets(session)
    assert asset.engine_version == "16.2" and asset.version == 2
    assert [v for v, _ in asset_service.versions(session, asset)] == [1, 2]


def test_records_of_one_file_that_disagree_about_one_asset_ask_a_person(session):
    """Two records of the same source in one run saying two owners: a person decides (SPEC
    §6); the first value stands meanwhile, and both later records point to one review item."""
    run = run_file(session, inventory({**PG, "owner": "a"}, {**PG, "owner": "b"}, {**PG, "owner": "b"}))
    assert outcomes(session, run) == {"json:1": "created", "json:2": "flagged", "json:3": "flagged"}
    [asset] = assets(session)
    assert asset.owner == "a" and asset.version == 1
    first, second, third = records(session, run)
    assert second.conflict_id is not None and third.conflict_id == second.conflict_id
    conflict = session.get(Conflict, second.conflict_id)
    assert conflict.kind == ConflictKind.field_conflict and conflict.fields == {"owner": ["a", "b"]}
    assert conflict.reasons == ["owner: record json:1 reported 'a', record json:2 reports 'b'"]


def test_portless_records_are_idempotent_by_endpoint_and_database(session):
    rows = "name,engine,host,database,owner\ncrm,mysql,crm.example.com,crm,a\n"
    first = run_file(session, rows, "a.csv")
    changed = run_file(session, rows.replace(",a\n", ",b\n"), "b.csv")
    assert outcomes(session, first) == {"csv:1": "created"}
    assert outcomes(session, changed) == {"csv:1": "updated"}
    assert [a.owner for a in assets(session)] == ["b"]


def test_a_record_without_identifiers_is_recognised_when_seen_again(session):
    data = inventory({"name": "mystery", "engine": "oracle", "owner": "finance"})
    first = run_file(session, data)
    second = run_file(session, data, "again.json")
    assert outcomes(session, first) == {"json:1": "created"}
    assert outcomes(session, second) == {"json:1": "unchanged"}
    assert count(session, Asset) == 1


def test_a_trashed_asset_is_not_resurrected_or_duplicated(session):
    asset = asset_service.create(session, Actor.cli(), PG)
    asset_service.delete(session, Actor.cli(), asset.id)
    run = run_file(session, inventory({**PG, "owner": "x"}))
    [record] = records(session, run)
    assert record.outcome.value == "skipped" and "trash" in record.message
    assert count(session, Asset) == 1


def test_invalid_rows_are_listed_and_valid_rows_go_in(session):
    run = run_file(session, fixture("cmdb_export.csv"), "cmdb_export.csv")
    assert run.failed > 0 and run.created > 0
    failed = {r.key for r in records(session, run) if r.outcome.value == "failed"}
    assert {e["key"] for e in run.row_errors} == failed
    assert {f"csv:{e['row']}" for e in run.row_errors} == failed  # the data row number
    assert all(e["message"] for e in run.row_errors)


def test_formula_cells_are_stored_verbatim(session):
    run_file(session, fixture("cmdb_export.csv"), "cmdb_export.csv")
    names = [a.name for a in assets(session)]
    assert any(n.startswith("=HYPERLINK(") for n in names)


def test_hostile_xml_fails_the_run_and_writes_nothing(session):
    for name in ("nmap_billion_laughs.xml", "nmap_xxe.xml", "nmap_external_dtd.xml", "nmap_truncated.xml"):
        try:
            run = run_file(session, fixture(name), name)
        except Exception as exc:  # refused at upload: it is not even nmap XML
            assert "Supported formats" in str(exc) or "entit" in str(exc).lower(), exc
            continue
        assert run.status == ImportStatus.failed, name
        assert run.error
        assert run.processed == 0
    assert count(session, Asset) == 0 and audit_count(session) == 0


def test_truncated_xml_reports_where(session):
    run = run_file(session, fixture("nmap_truncated.xml"), "scan.xml")
    assert run.status == ImportStatus.failed
    assert "line" in run.error


@pytest.mark.parametrize(("name", "expected"), [
    ("latin1.csv", 2), ("bom_semicolon.csv", 2),
])
def test_csv_encodings_and_delimiters(session, name, expected):
    run = run_file(session, fixture(name), name)
    assert run.status == ImportStatus.succeeded
    assert run.created == expected


def test_batches_commit_progress_and_heartbeat(session):
    data = inventory(*[{"name": f"db{i}", "engine": "redis", "host": f"r{i}.example.com", "port": 6379}
                       for i in range(10)])
    run = imports.create_run(session, Actor.cli(), data=data.encode(), filename="r.json")
    seen: list[int] = []
    imports.execute(session, run.id, progress=lambda r: seen.append(r.processed), batch_size=3)
    assert seen == [0, 3, 6, 9, 10]
    assert run.heartbeat_at is not None and run.finished_at is not None


def test_cancel_a_queued_run_and_execute_leaves_it(session):
    run = imports.create_run(session, Actor.cli(), data=fixture("inventory.json"), filename="i.json")
    imports.cancel(session, Actor.cli("someone"), run.id)
    assert imports.execute(session, run.id).status == ImportStatus.cancelled
    assert count(session, Asset) == 0


def test_retry_runs_the_same_stored_file_again(session):
    first = run_file(session, fixture("inventory.json"), "inventory.json")
    again = imports.retry(session, Actor.cli(), first.id)
    assert again.file_id == first.file_id and again.retry_of == first.id and again.number == first.number + 1
    done = imports.execute(session, again.id)
    assert done.created == 0 and done.unchanged == first.created


def test_reaper_fails_runs_whose_heartbeat_stopped(session):
    from datetime import timedelta

    from webapp.models.base import utcnow

    run = imports.create_run(session, Actor.cli(), data=fixture("inventory.json"), filename="i.json")
    run.status = ImportStatus.running
    run.heartbeat_at = utcnow() - timedelta(seconds=600)
    session.commit()
    assert imports.reap_stale(session, stale_seconds=300) == 1
    session.refresh(run)
    assert run.status == ImportStatus.failed and "heartbeat" in run.error
    assert imports.reap_stale(session, stale_seconds=300) == 0


def test_same_file_is_stored_once(session):
    from webapp.models import ImportFile

    run_file(session, fixture("inventory.json"), "a.json")
    run_file(session, fixture("inventory.json"), "b.json")
    assert count(session, ImportFile) == 1


def test_file_names_never_carry_paths(session):
    run = imports.create_run(session, Actor.cli(), data=fixture("inventory.json"), filename="../../etc/pass\x00wd.json")
    assert run.filename == "passwd.json"
    run = imports.create_run(session, Actor.cli(), data=fixture("inventory.json"), filename="..\\..\\x.json")
    assert run.filename == "x.json"


def test_unknown_format_is_refused_naming_the_formats(session):
    from webapp.services.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as caught:
        imports.create_run(session, Actor.cli(), data=fixture("not_a_discovery_file.txt"), filename="x.txt")
    assert "nmap-xml" in caught.value.errors["file"] and "azure-json" in caught.value.errors["file"]
    with pytest.raises(ValidationFailed) as caught:
        imports.create_run(session, Actor.cli(), data=fixture("truncated.json"), filename="x.json")
    assert "line" in caught.value.errors["file"]


def test_sightings_list_the_runs_that_saw_an_asset(session):
    first = run_file(session, fixture("inventory.json"), "inventory.json")
    run_file(session, fixture("inventory.json"), "inventory.json", dry_run=True)
    second = run_file(session, fixture("inventory.json"), "inventory.json")
    billing = next(a for a in assets(session) if a.name == "billing-db")
    seen = imports.sightings(session, billing.id)
    assert [s.number for s in seen] == [second.number, first.number]  # dry runs are not sightings
    assert seen[0].key == "json:1" and seen[0].outcome.value == "unchanged"


def test_purging_an_asset_keeps_its_records_without_the_link(session):
    run = run_file(session, inventory(PG))
    [asset] = assets(session)
    asset_service.delete(session, Actor.cli(), asset.id)
    asset_service.purge(session, Actor.cli(), asset.id)
    assert records(session, run)[0].asset_id is None
    again = run_file(session, inventory(PG))
    assert outcomes(session, again) == {"json:1": "created"}


def test_an_nmap_host_port_name_never_renames_an_asset(session):
    asset = asset_service.create(session, Actor.cli(), {
        "name": "pg-primary", "engine": "postgresql", "host": "db01.corp.example.com", "port": 5432,
    })
    run = run_file(session, fixture("nmap_sv.xml"), "scan.xml")
    assert outcomes(session, run)["nmap:10.20.0.5:5432/tcp"] == "updated"
    session.expire_all()
    found = session.get(Asset, asset.id)
    assert found.name == "pg-primary" and found.host == "db01.corp.example.com"
    assert "10.20.0.5" in found.aliases


def test_a_reimport_after_the_asset_changed_reconciles_again(session):
    data = inventory({**PG, "owner": "dba"})
    run_file(session, data)
    [asset] = assets(session)
    asset_service.update(session, Actor.cli(), asset.id, {"notes": "edited"}, expected_version=None)
    again = run_file(session, data, "again.json")
    assert outcomes(session, again) == {"json:1": "unchanged"}
    asset_service.delete(session, Actor.cli(), asset.id)
    third = run_file(session, data, "third.json")
    assert outcomes(session, third) == {"json:1": "skipped"}  # in the trash: not a shortcut


def test_an_identical_reimport_replays_the_last_decisions_only_while_nothing_changed(session, monkeypatch):
    parsed: list[str] = []
    real_parse = imports.parse
    monkeypatch.setattr(imports, "parse", lambda *a, **k: parsed.append("x") or real_parse(*a, **k))
    data = fixture("cmdb_export.csv")
    first = run_file(session, data, "a.csv")
    rows = count(session, ImportRecord)
    second = run_file(session, data, "b.csv")
    assert len(parsed) == 1  # replayed: nothing changed since the first run
    assert second.replay_of == first.id and count(session, ImportRecord) == rows  # no row written
    assert run_file(session, data, "b2.csv").replay_of == first.id  # replays chain to the origin
    first_out, second_out = outcomes(session, first), outcomes(session, second)
    assert first_out.keys() == second_out.keys()
    for key, outcome in first_out.items():
        expected = "unchanged" if outcome in ("created", "updated") else outcome
        assert second_out[key] == expected
    assert [r.message for r in records(session, second)] == [r.message for r in records(session, first)]
    assert second.row_errors == first.row_errors and second.failed == first.failed

    asset_service.create(session, Actor.cli(), {"name": "unrelated", "engine": "redis"})
    third = run_file(session, data, "c.csv")
    assert len(parsed) == 2  # the inventory changed: decided afresh
    assert outcomes(session, third) == second_out


def test_a_reimport_after_unrelated_edits_replays_while_every_record_s_asset_is_unchanged(session, monkeypatch):
    """Every record of the last run was applied to an asset that has not changed since: only
    other assets changed, so the decisions stand (no parsing, no record rows); once a record's
    own asset changes, or a setting does, the file is decided afresh."""
    parsed: list[str] = []
    real_parse = imports.parse
    monkeypatch.setattr(imports, "parse", lambda *a, **k: parsed.append("x") or real_parse(*a, **k))
    data = inventory({**PG, "owner": "dba"}, {"name": "billing", "engine": "mysql", "host": "db2.example.com",
                                               "port": 3306})
    first = run_file(session, data, "a.json")
    rows = count(session, ImportRecord)
    asset_service.create(session, Actor.cli(), {"name": "unrelated", "engine": "redis"})
    audit.record(session, Actor.cli("ops"), AuditAction.login, "user", "ops")  # no decision reads it
    session.commit()
    second = run_file(session, data, "b.json")
    assert len(parsed) == 1 and second.replay_of == first.id
    assert count(session, ImportRecord) == rows
    assert outcomes(session, second) == {"json:1": "unchanged", "json:2": "unchanged"}
    orders = next(a for a in assets(session) if a.name == "orders")
    asset_service.update(session, Actor.cli(), orders.id, {"notes": "edited"}, expected_version=None)
    third = run_file(session, data, "c.json")
    assert len(parsed) == 2 and third.replay_of is None  # its own asset changed: decided afresh
    assert outcomes(session, third) == {"json:1": "unchanged", "json:2": "unchanged"}
    asset_service.create(session, Actor.cli(), {"name": "unrelated-2", "engine": "redis"})
    assert run_file(session, data, "d.json").replay_of == third.id
    settings_service.update(session, Actor.cli(), {"review_threshold": 0.5})
    assert run_file(session, data, "e.json").replay_of is None  # a setting changed: afresh
    assert len(parsed) == 3


def test_a_run_declared_dead_by_the_reaper_stops_and_stays_failed(session):
    """The reaper may give up on a slow worker that is still alive: that worker must stop at
    its next batch and not turn the run back into a success."""
    data = inventory(*[{"name": f"db{i}", "engine": "redis", "host": f"r{i}.example.com", "port": 6379}
                       for i in range(6)])
    run = imports.create_run(session, Actor.cli(), data=data.encode(), filename="r.json")

    def reap_after_first_batch(current) -> None:  # type: ignore[no-untyped-def]
        if current.processed == 2:
            assert imports.reap_stale(session, stale_seconds=-1) == 1

    done = imports.execute(session, run.id, progress=reap_after_first_batch, batch_size=2)
    assert done.status == ImportStatus.failed and "heartbeat" in done.error
    assert done.processed == 2 and count(session, Asset) == 2


def test_an_imported_connection_string_is_encrypted_and_never_audited(session):
    secret = "postgresql://app:hunter2@db1.example.com/orders"
    run_file(session, inventory({**PG, "connection_string": secret}))
    [asset] = assets(session)
    assert asset.has_connection_string and secret not in asset.connection_string_encrypted
    event = session.scalars(select(AuditEvent)).one()
    assert event.changes["connection_string"] == [None, "***"]
    changed = run_file(session, inventory({**PG, "connection_string": secret + "?sslmode=require"}), "b.json")
    [record] = records(session, changed)
    assert record.outcome.value == "updated" and record.changes["connection_string"] == ["***", "***"]
    assert "hunter2" not in str([e.changes for e in session.scalars(select(AuditEvent))])
    assert audit.verify(session).ok


def test_row_warnings_reach_the_record_and_the_run(session):
    csv = ("name,engine,host,port,criticality,owner\n"
           "orders-db,postgresql,db1.example.com,5432,bogus,team-a\n"
           "billing-db,mysql,db2.example.com,3306,high,team-b\n")
    run = run_file(session, csv, "cmdb.csv")
    assert run.created == 2 and run.warned == 1
    by_key = {r.key: r for r in records(session, run)}
    warned = by_key["csv:1"]
    assert warned.outcome.value == "created"
    assert "criticality" in warned.message and "not recognised; left out" in warned.message
    assert by_key["csv:2"].message is None
    assert run.row_warnings == [{"row": 1, "key": "csv:1", "message": warned.message.removeprefix(
        "Warnings: ").removesuffix(".")}]
    again = run_file(session, csv, "cmdb.csv")  # an identical re-import keeps them too
    assert again.warned == 1 and again.row_warnings == run.row_warnings
