"""What the import pipeline asks reviewers: possible duplicates from weak evidence, and field
conflicts only where a person is needed: a locked field contradicted (SPEC §6). A value a
higher-precedence source outranks is an observation, not a review item (tests/imports/
test_observations.py has the rest), through the real pipeline."""

from __future__ import annotations

from sqlalchemy import select

from tests.imports.helpers import assets, count, inventory, outcomes, records, run_file
from webapp.models import Asset, Conflict, ConflictKind, ConflictStatus, ImportRecord, Observation
from webapp.services import assets as asset_service
from webapp.services import conflicts, settings
from webapp.services.actor import Actor


def csv_file(*rows: str) -> str:
    return "\n".join(["name,engine,version,host,port,database_name,environment,owner", *rows]) + "\n"


def nmap_file(address: str, hostname: str, port: int, version: str) -> str:
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE nmaprun>\n<nmaprun scanner="nmap" args="nmap -sV" version="7.94">'
        f'<host><status state="up"/><address addr="{address}" addrtype="ipv4"/>'
        f'<hostnames><hostname name="{hostname}" type="PTR"/></hostnames><ports>'
        f'<port protocol="tcp" portid="{port}"><state state="open"/>'
        f'<service name="postgresql" product="PostgreSQL DB" version="{version}" method="probed" conf="10"/>'
        "</port></ports></host></nmaprun>\n"
    )


def aws_file(identifier: str, host: str, version: str, owner: str) -> str:
    import json

    return json.dumps({"DBInstances": [{
        "DBInstanceIdentifier": identifier, "Engine": "postgres", "EngineVersion": version,
        "DBInstanceArn": f"arn:aws:rds:eu-west-1:123456789012:db:{identifier}",
        "Endpoint": {"Address": host, "Port": 5432}, "DBInstanceStatus": "available",
        "TagList": [{"Key": "owner", "Value": owner}],
    }]})


def conflict_of(session, run) -> Conflict:  # type: ignore[no-untyped-def]
    [record] = records(session, run)
    return session.get(Conflict, record.conflict_id)


def locked_asset(session, version: str = "15.2") -> Asset:  # type: ignore[no-untyped-def]
    """An asset whose engine version a person edited (so it is locked)."""
    asset = asset_service.create(session, Actor.cli(), {
        "name": "orders", "engine": "postgresql", "host": "db1.example.com", "port": 5432,
        "engine_version": "15.1"})
    return asset_service.update(session, Actor.cli(), asset.id, {"engine_version": version},
                                expected_version=None)


def test_a_value_a_person_set_is_not_overwritten_but_asked_about(session):
    asset = locked_asset(session)
    run = run_file(session, nmap_file("10.0.0.1", "db1.example.com", 5432, "15.6"), "scan.xml")
    assert outcomes(session, run) == {"nmap:10.0.0.1:5432/tcp": "flagged"}
    conflict = conflict_of(session, run)
    assert conflict.kind == ConflictKind.field_conflict and conflict.status == ConflictStatus.open
    assert conflict.candidate_id == asset.id and conflict.import_run_id == run.id
    assert conflict.fields == {"engine_version": ["15.2", "15.6"]}
    assert conflict.reasons == ["engine_version is locked: a person set it"]
    session.expire_all()
    assert session.get(Asset, asset.id).engine_version == "15.2"
    # the address is not a held value: it joins the aliases
    assert "10.0.0.1" in session.get(Asset, asset.id).aliases
    # the same scan again asks nothing new
    again = run_file(session, nmap_file("10.0.0.1", "db1.example.com", 5432, "15.6"), "scan2.xml")
    assert outcomes(session, again) == {"nmap:10.0.0.1:5432/tcp": "flagged"}
    assert conflict_of(session, again).id == conflict.id
    assert count(session, Conflict) == 1


def test_a_value_a_person_typed_without_locking_it_is_only_observed(session):
    """A value entered when the asset was created is not locked (nobody edited it): a scan
    that disagrees leaves it, and the scan's value is kept as an observation."""
    asset = asset_service.create(session, Actor.cli(), {
        "name": "orders", "engine": "postgresql", "host": "db1.example.com", "port": 5432,
        "engine_version": "15.2"})
    run = run_file(session, nmap_file("10.0.0.1", "db1.example.com", 5432, "15.6"), "scan.xml")
    assert outcomes(session, run) == {"nmap:10.0.0.1:5432/tcp": "updated"}  # the address joins
    assert count(session, Conflict) == 0
    session.expire_all()
    assert session.get(Asset, asset.id).engine_version == "15.2"
    assert session.get(Observation, (asset.id, "engine_version", "nmap")).value == "15.6"


def test_a_locked_value_spelled_the_vendor_way_is_no_conflict(session):
    locked_asset(session, "8.0")
    run = run_file(session, nmap_file("10.0.0.1", "db1.example.com", 5432, "8.0.36-log"), "scan.xml")
    assert outcomes(session, run) == {"nmap:10.0.0.1:5432/tcp": "updated"}
    assert count(session, Conflict) == 0


def test_an_answered_question_is_not_asked_again(session):
    locked_asset(session)
    run = run_file(session, nmap_file("10.0.0.1", "db1.example.com", 5432, "15.6"), "scan.xml")
    conflicts.resolve(session, Actor.cli("reviewer"), conflict_of(session, run).id, "dismiss")
    again = run_file(session, nmap_file("10.0.0.1", "db1.example.com", 5432, "15.6"), "scan2.xml")
    [record] = records(session, again)
    assert record.outcome.value == "unchanged" and record.conflict_id is None
    assert "already kept the current values of: engine_version" in record.message
    # a newer version is a new question
    newer = run_file(session, nmap_file("10.0.0.1", "db1.example.com", 5432, "16.1"), "scan3.xml")
    assert outcomes(session, newer) == {"nmap:10.0.0.1:5432/tcp": "flagged"}
    assert count(session, Conflict) == 2


def test_technical_fields_cloud_outranks_scanner(session):
    aws = run_file(session, aws_file("orders", "orders.abc.rds.amazonaws.com", "15.4", "team-a"), "rds.json")
    assert outcomes(session, aws) == {"aws_rds:orders": "created"}
    scan = run_file(session, nmap_file("10.0.0.9", "orders.abc.rds.amazonaws.com", 5432, "15.5"), "scan.xml")
    # outranked, not asked about: the scan's version is an observation (the address is new)
    assert outcomes(session, scan) == {"nmap:10.0.0.9:5432/tcp": "updated"}
    assert count(session, Conflict) == 0
    [asset] = assets(session)
    assert asset.engine_version == "15.4"
    assert asset.field_sources["engine_version"] == "aws"
    seen = session.get(Observation, (asset.id, "engine_version", "nmap"))
    assert seen.value == "15.5" and seen.import_run_id == scan.id


def test_technical_fields_scanner_is_outranked_by_cloud(session):
    scan = run_file(session, nmap_file("10.0.0.9", "orders.abc.rds.amazonaws.com", 5432, "15.5"), "scan.xml")
    assert outcomes(session, scan) == {"nmap:10.0.0.9:5432/tcp": "created"}
    aws = run_file(session, aws_file("orders", "orders.abc.rds.amazonaws.com", "15.4", "team-a"), "rds.json")
    assert outcomes(session, aws) == {"aws_rds:orders": "updated"}
    [asset] = assets(session)
    assert asset.engine_version == "15.4" and asset.field_sources["engine_version"] == "aws"


def test_business_fields_csv_outranks_cloud_tags(session):
    run_file(session, csv_file("orders,postgresql,15.4,orders.abc.rds.amazonaws.com,5432,orders,production,dba-team"),
             "cmdb.csv")
    aws = run_file(session, aws_file("orders", "orders.abc.rds.amazonaws.com", "15.4", "someone-else"), "rds.json")
    [record] = records(session, aws)
    assert record.outcome.value == "updated" and record.conflict_id is None
    assert count(session, Conflict) == 0
    [asset] = assets(session)
    assert asset.owner == "dba-team"
    assert session.get(Observation, (asset.id, "owner", "aws")).value == "someone-else"
    assert asset.cloud_resource_id  # the technical fields the cloud brings still go in
    assert record.changes and "cloud_resource_id" in record.changes


def test_a_version_range_never_replaces_an_exact_version(session):
    run_file(session, csv_file("orders,postgresql,9.6.24,db9.example.com,5432,orders,production,dba"), "cmdb.csv")
    scan = run_file(session, nmap_file("10.0.0.4", "db9.example.com", 5432, "9.6.0 or later"), "scan.xml")
    assert outcomes(session, scan) == {"nmap:10.0.0.4:5432/tcp": "updated"}  # the address is new
    [asset] = assets(session)
    assert asset.engine_version == "9.6.24"
    assert count(session, Conflict) == 0


def test_weak_evidence_creates_the_record_and_asks_whether_it_duplicates_the_candidate(session):
    existing = run_file(session, csv_file("orders-db,postgresql,15,orders-db.corp.example.com,5432,orders,production,dba"),
                        "cmdb.csv")
    assert outcomes(session, existing) == {"csv:1": "created"}
    [candidate] = assets(session)
    # a short host name and the same name and database, no port: weak evidence, never a merge
    run = run_file(session, inventory({"name": "orders-db", "engine": "postgresql", "host": "orders-db",
                                       "database_name": "orders"}))
    assert outcomes(session, run) == {"json:1": "created"}
    [record] = records(session, run)
    question = session.get(Conflict, record.conflict_id)
    assert question.kind == ConflictKind.possible_duplicate
    assert {question.candidate_id, question.duplicate_id} == {candidate.id, record.asset_id}
    assert question.confidence < 0.90
    assert any(r.startswith("weak: short host name orders-db = first label of") for r in question.reasons)
    assert any(r.startswith("weak: name tokens in common (orders)") for r in question.reasons)
    assert len(assets(session)) == 2  # nothing merged without a reviewer


def test_medium_evidence_is_held_for_review_and_nothing_is_created(session):
    run_file(session, csv_file("orders-db,postgresql,,orders-db.corp.example.com,5432,orders,production,dba"),
             "cmdb.csv")
    # a short host name on the same port and engine: medium evidence, nothing corroborates it
    run = run_file(session, inventory({"name": "x", "engine": "postgresql", "host": "orders-db", "port": 5432}))
    assert outcomes(session, run) == {"json:1": "flagged"}
    conflict = conflict_of(session, run)
    assert conflict.kind == ConflictKind.possible_duplicate and conflict.duplicate_id is None
    assert conflict.reasons[0].startswith("medium: short host name orders-db = first label of")
    assert len(assets(session)) == 1
    assert session.scalar(select(ImportRecord.asset_id).where(ImportRecord.conflict_id == conflict.id)) is None


def test_weak_evidence_below_the_review_threshold_creates(session):
    run_file(session, csv_file("orders-db-01,postgresql,15,db-a.example.com,5432,orders,production,dba"), "cmdb.csv")
    run = run_file(session, inventory({"name": "orders-db-02", "engine": "postgresql", "host": "db-b.example.com",
                                       "port": 5432, "database_name": "orders"}))
    assert outcomes(session, run) == {"json:1": "created"}
    assert count(session, Conflict) == 0


def test_thresholds_come_from_settings(session):
    run_file(session, csv_file("orders-db,postgresql,15,orders-db.corp.example.com,5432,orders,production,dba"),
             "cmdb.csv")
    settings.update(session, Actor.cli(), {"review_threshold": 0.85, "auto_merge_threshold": 0.99})
    weak = run_file(session, inventory({"name": "orders-db", "engine": "postgresql", "host": "orders-db",
                                        "database_name": "orders"}))
    assert outcomes(session, weak) == {"json:1": "created"}  # 0.80 is now below review
    strong = run_file(session, inventory({"name": "orders-db", "engine": "postgresql",
                                          "host": "orders-db.corp.example.com", "port": 5432}))
    assert outcomes(session, strong) == {"json:1": "flagged"}  # 0.95 + name is below 0.99
    assert conflict_of(session, strong).kind == ConflictKind.possible_duplicate


def test_a_dry_run_flags_without_writing_review_items(session):
    run_file(session, csv_file("orders-db,postgresql,15,orders-db.corp.example.com,5432,orders,production,dba"),
             "cmdb.csv")
    run = run_file(session, inventory({"name": "x", "engine": "postgresql", "host": "orders-db",
                                       "port": 5432}), dry_run=True)
    assert outcomes(session, run) == {"json:1": "flagged"}
    assert run.flagged == 1
    assert count(session, Conflict) == 0


def test_existing_assets_the_new_evidence_connects_merge_when_the_record_names_both(session):
    """One asset known by its address, another by its DNS name: a scan that sees the address
    answer to that name (a bridge) shows them to be one server: strong evidence, they merge."""
    by_ip = asset_service.create(session, Actor.cli(), {
        "name": "legacy-pg", "engine": "postgresql", "host": "10.0.0.5", "port": 5432, "source": "old-cmdb"})
    by_name = asset_service.create(session, Actor.cli(), {
        "name": "db01", "engine": "postgresql", "host": "db01.corp.example.com", "port": 5432,
        "source": "old-cmdb"})
    run = run_file(session, nmap_file("10.0.0.5", "db01.corp.example.com", 5432, "16.1"), "scan.xml")
    [record] = records(session, run)
    assert record.outcome.value == "updated"
    session.expire_all()
    [survivor] = [a for a in assets(session) if a.deleted_at is None]
    assert record.asset_id == survivor.id and survivor.id in {by_ip.id, by_name.id}
    other = by_name if survivor.id == by_ip.id else by_ip
    assert session.get(Asset, other.id).merged_into == survivor.id
    assert {survivor.host, *survivor.aliases} >= {"10.0.0.5", "db01.corp.example.com"}
    assert count(session, Conflict) == 0
    # scanning again finds the one asset
    again = run_file(session, nmap_file("10.0.0.5", "db01.corp.example.com", 5432, "16.2"), "scan2.xml")
    assert [r.asset_id for r in records(session, again)] == [survivor.id]


def test_existing_assets_the_new_evidence_connects_are_brought_to_review(session):
    """One asset known by its address, another by its DNS name and a second address the scan
    does not see: the record shows them to be one server, but not all of the other, so a
    reviewer is asked."""
    by_ip = asset_service.create(session, Actor.cli(), {
        "name": "legacy-pg", "engine": "postgresql", "host": "10.0.0.5", "port": 5432, "source": "old-cmdb"})
    by_name = asset_service.create(session, Actor.cli(), {
        "name": "db01", "engine": "postgresql", "host": "db01.corp.example.com", "port": 5432,
        "aliases": ["10.9.9.9"], "source": "old-cmdb"})
    run = run_file(session, nmap_file("10.0.0.5", "db01.corp.example.com", 5432, "16.1"), "scan.xml")
    [record] = records(session, run)
    assert record.outcome.value == "updated"  # one of the two takes the record
    assert record.asset_id in {by_ip.id, by_name.id}
    pair = session.get(Conflict, record.conflict_id)
    assert pair.kind == ConflictKind.possible_duplicate
    assert {pair.candidate_id, pair.duplicate_id} == {by_ip.id, by_name.id}
    assert pair.reasons[0].startswith(f"record nmap:10.0.0.5:5432/tcp of import #{run.number} names both")
    assert any(r.startswith("strong: same host:port") for r in pair.reasons)
    assert len(assets(session)) == 2  # nothing is merged without a reviewer
    # scanning again asks nothing new
    run_file(session, nmap_file("10.0.0.5", "db01.corp.example.com", 5432, "16.2"), "scan2.xml")
    assert count(session, Conflict) == 1


def test_assets_that_cannot_be_one_database_make_the_record_ambiguous_instead(session):
    """Two databases on one endpoint (different names) are not duplicates of each other: a
    record naming neither is flagged, and no pair is asked about."""
    for name in ("orders", "billing"):
        asset_service.create(session, Actor.cli(), {
            "name": name, "engine": "postgresql", "host": "db2.example.com", "port": 5432,
            "database_name": name, "source": "old-cmdb"})
    run = run_file(session, nmap_file("10.0.0.6", "db2.example.com", 5432, "16.1"), "scan.xml")
    conflict = conflict_of(session, run)
    assert conflict.duplicate_id is None and conflict.kind == ConflictKind.possible_duplicate
    assert any(r.startswith("ambiguous: the endpoint matches 2 assets") for r in conflict.reasons)


def test_a_dry_run_matching_its_own_would_be_assets_names_none_of_them(session):
    """Later records of a dry run can match assets an earlier record would create: those
    assets do not exist, so no outcome may point at them."""
    rows = [f"db-{i},postgresql,15,db-{i}.example.com,5432,app,production,dba" for i in range(3)]
    run = run_file(session, csv_file(*rows, *rows), "twice.csv", dry_run=True)
    assert run.status.value == "succeeded"
    assert [r.outcome.value for r in records(session, run)] == ["created"] * 3 + ["unchanged"] * 3
    assert all(r.asset_id is None for r in records(session, run))
