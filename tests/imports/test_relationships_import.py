"""Relationships from discovery (SPEC §6): RDS read replicas and Aurora cluster members, GCP
masterInstanceName/replicaNames and Azure sourceServerResourceId become links between the
assets an import wrote, audited on both, and a re-import adds nothing."""

from __future__ import annotations

import json

from sqlalchemy import select

from tests.imports.helpers import count, fixture, run_file
from webapp.models import Asset, AssetRelationship, AuditAction, AuditEvent, ImportStatus
from webapp.services import assets, relationships
from webapp.services.actor import Actor


def links(session) -> set[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    session.expire_all()
    names = dict(session.execute(select(Asset.id, Asset.name)).tuples().all())
    return {(names[r.source_id], r.kind.value, names[r.target_id])
            for r in session.scalars(select(AssetRelationship))}


def link_events(session) -> int:  # type: ignore[no-untyped-def]
    return count(session, AuditEvent, AuditEvent.action == AuditAction.link)


def test_aurora_members_and_read_replicas_become_links_audited_on_both_ends(session):
    run = run_file(session, fixture("aws_rds_instances.json"), "rds.json")
    assert run.status == ImportStatus.succeeded
    run_file(session, fixture("aws_rds_clusters.json"), "clusters.json")
    found = links(session)
    assert ("billing-prod", "replicates_to", "billing-prod-replica") in found
    assert {("orders-aurora-instance-1", "member_of", "orders-aurora"),
            ("orders-aurora-instance-2", "member_of", "orders-aurora")} <= found
    rel = session.scalars(select(AssetRelationship).where(
        AssetRelationship.kind == "replicates_to")).first()
    assert rel.import_run_id == run.id and rel.created_by is None
    replica = session.get(Asset, rel.target_id)
    [event] = session.scalars(select(AuditEvent).where(
        AuditEvent.entity_id == str(replica.id), AuditEvent.action == AuditAction.link)).all()
    assert event.actor_label == f"import #{run.number}"
    assert event.message == "billing-prod replicates to billing-prod-replica"


def test_a_file_with_instances_and_clusters_links_its_members_and_counts_them(session):
    run = run_file(session, fixture("aws_rds_both.json"), "both.json")
    assert run.linked == 2
    assert links(session) == {("orders-aurora-instance-1", "member_of", "orders-aurora"),
                              ("orders-aurora-instance-2", "member_of", "orders-aurora")}
    assert link_events(session) == 4  # one on each end of each link


def test_reimporting_adds_no_link_and_no_event(session):
    data = fixture("aws_rds_both.json")
    run_file(session, data, "both.json")
    events = link_events(session)
    again = run_file(session, data, "both.json")  # identical: replayed
    changed = run_file(session, data.replace(b"}", b"} ", 1), "both-again.json")  # parsed again
    assert changed.replay_of is None and changed.status == ImportStatus.succeeded
    assert (again.linked, changed.linked) == (0, 0)
    assert count(session, AssetRelationship) == 2
    assert link_events(session) == events


def test_a_link_a_person_removed_comes_back_with_the_next_import_that_states_it(session):
    data = fixture("aws_rds_both.json")
    run_file(session, data, "both.json")
    rel = session.scalars(select(AssetRelationship)).first()
    relationships.delete(session, Actor.cli("ops"), rel.id)
    assert run_file(session, data, "both.json").linked == 1
    assert count(session, AssetRelationship) == 2


def test_gcp_master_and_replica_names_give_one_link(session):
    run_file(session, fixture("gcp_sql_instances.json"), "gcp.json")
    assert links(session) == {("billing-pg", "replicates_to", "billing-pg-replica")}


def test_azure_source_server_of_a_replica_is_linked_but_a_restored_copy_is_not(session):
    run_file(session, fixture("azure_postgres_flexible.json"), "pg.json")
    run_file(session, fixture("azure_mysql_flexible.json"), "mysql.json")
    assert links(session) == {
        ("production-flexible-server", "replicates_to", "production-flexible-server-replica"),
        ("shop-mysql", "replicates_to", "shop-mysql-replica"),
    }


def test_ends_named_only_by_record_key_are_found_among_the_runs_own_records(session):
    data = json.dumps({"DBInstances": [
        {"DBInstanceIdentifier": "a", "Engine": "mysql", "ReadReplicaDBInstanceIdentifiers": ["b"],
         "Endpoint": {"Address": "a.example.com", "Port": 3306}},
        {"DBInstanceIdentifier": "b", "Engine": "mysql", "ReadReplicaSourceDBInstanceIdentifier": "a",
         "Endpoint": {"Address": "b.example.com", "Port": 3306}},
    ]})
    run_file(session, data, "trimmed.json")
    assert links(session) == {("a", "replicates_to", "b")}


def test_a_dry_run_and_an_end_in_the_trash_write_no_link(session):
    data = fixture("aws_rds_both.json")
    dry = run_file(session, data, "both.json", dry_run=True)
    assert dry.status == ImportStatus.succeeded and dry.linked == 0
    assert count(session, AssetRelationship) == 0
    run_file(session, data, "both.json")
    session.execute(AssetRelationship.__table__.delete())
    session.commit()
    cluster = session.scalars(select(Asset).where(Asset.name == "orders-aurora")).one()
    assets.delete(session, Actor.cli("ops"), cluster.id)
    again = run_file(session, data.replace(b"}", b"} ", 1), "both-2.json")
    assert again.status == ImportStatus.succeeded and again.linked == 0
    assert count(session, AssetRelationship) == 0  # the cluster's asset is in the trash
