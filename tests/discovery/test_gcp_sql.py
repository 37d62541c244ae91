"""`gcp-sql-json`: gcloud sql instances list --format=json."""

from __future__ import annotations

import json

import pytest

from tests.discovery.helpers import by_key, parse_fixture
from webapp.discovery import Relation, parse

LINK = "https://sqladmin.googleapis.com/sql/v1beta4/projects/{}/instances/{}"


@pytest.fixture(scope="module")
def result():
    return parse_fixture("gcp_sql_instances.json")


def test_keys_are_project_and_name(result):
    assert [r.key for r in result.records] == [
        "gcp_sql:acme-prod:billing-pg",
        "gcp_sql:acme-prod:billing-pg-replica",
        "gcp_sql:acme-web:shop-mysql",
        "gcp_sql:acme-bi:reports-mssql",
        "gcp_sql:acme-legacy:old-thing",
    ]


def test_a_private_postgres_primary(result):
    record = by_key(result)["gcp_sql:acme-prod:billing-pg"]
    fields = dict(record.fields)
    metadata = fields.pop("metadata")
    assert fields == {
        "name": "billing-pg",
        "engine": "postgresql",
        "engine_version": "15.5",  # installed version
        "host": "10.40.0.5",
        "port": 5432,  # private IP; the OUTGOING address is not a listener
        "cloud_provider": "gcp",
        "region": "us-central1",
        "cloud_resource_id": LINK.format("acme-prod", "billing-pg"),
        "tls_required": True,
        "publicly_accessible": False,
        "encrypted_at_rest": True,
        "backup_retention_days": 7,
        "deletion_protection": True,
        "status": "active",
        "tags": ["cost-center=cc-100", "environment=prod", "owner=team-billing"],
        "environment": "production",
        "owner": "team-billing",
    }
    assert record.ip_addresses == ["10.40.0.5"]
    assert metadata["gcp_connection_name"] == "acme-prod:us-central1:billing-pg"
    assert metadata["gcp_kms_key"].endswith("/cryptoKeys/billing")


def test_replica_relation_between_self_links(result):
    assert by_key(result)["gcp_sql:acme-prod:billing-pg"].relations == [
        Relation(
            "replicates_to",
            LINK.format("acme-prod", "billing-pg"),
            LINK.format("acme-prod", "billing-pg-replica"),
        )
    ]
    replica = by_key(result)["gcp_sql:acme-prod:billing-pg-replica"]
    assert replica.relations == []  # the same link, stated by masterInstanceName, kept once
    assert replica.fields["backup_retention_days"] == 0  # automated backups off
    assert replica.fields["deletion_protection"] is False


def test_a_public_mysql_with_a_dns_name(result):
    record = by_key(result)["gcp_sql:acme-web:shop-mysql"]
    assert record.fields["host"] == "a1b2c3d4e5f6.1a2b3c4d5e6f.europe-west1.sql.goog"
    assert record.fields["aliases"] == ["35.195.10.20"]
    assert record.ip_addresses == ["35.195.10.20"]
    assert record.fields["engine_version"] == "8.0.35" and record.fields["port"] == 3306
    assert record.fields["tls_required"] is False and record.fields["publicly_accessible"] is True
    assert record.fields["environment"] == "staging" and record.fields["owner"] == "web"


def test_sql_server_old_self_link_and_stopped(result):
    record = by_key(result)["gcp_sql:acme-bi:reports-mssql"]
    assert record.fields["engine"] == "mssql" and record.fields["engine_version"] == "2019"
    assert record.fields["metadata"]["gcp_edition"] == "Standard"
    assert record.fields["cloud_resource_id"] == LINK.format("acme-bi", "reports-mssql")
    assert record.fields["status"] == "inactive"  # activationPolicy NEVER
    assert record.fields["backup_retention_days"] == 30
    assert "tags" not in record.fields


def test_an_unknown_database_version_is_a_warning(result):
    record = by_key(result)["gcp_sql:acme-legacy:old-thing"]
    assert record.error is None and "engine" not in record.fields and "port" not in record.fields
    assert record.warnings == [
        "databaseVersion 'ALLOYDB_15' not recognised; engine left out",
        "data_classification 'top-secret' not recognised; left out",
    ]
    assert record.fields["status"] == "inactive"  # SUSPENDED


def test_a_single_described_instance_and_minimal_entries():
    data = json.dumps(
        {
            "kind": "sql#instance",
            "name": "solo",
            "databaseVersion": "POSTGRES_16",
            "connectionName": "proj-x:europe-west3:solo",
            "masterInstanceName": "primary",
            "ipAddresses": [{"ipAddress": "34.1.2.3", "type": "PRIMARY"}],
        }
    ).encode()
    result = parse(data)
    assert result.format == "gcp-sql-json"
    record = result.records[0]
    assert record.key == "gcp_sql:proj-x:solo"
    assert record.fields["cloud_resource_id"] == LINK.format("proj-x", "solo")
    assert record.relations == [
        Relation("replicates_to", LINK.format("proj-x", "primary"), LINK.format("proj-x", "solo"))
    ]
    nameless = parse(b'[{"kind": "sql#instance", "databaseVersion": "MYSQL_8_0"}]').records[0]
    assert nameless.error == "Cloud SQL instance without a name."
