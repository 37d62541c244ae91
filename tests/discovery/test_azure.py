"""`azure-json`: az postgres/mysql flexible-server list and az sql server list."""

from __future__ import annotations

import json

from tests.discovery.helpers import parse_fixture
from webapp.discovery import Relation, parse

SUB = "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e"
PG = f"{SUB}/resourcegroups/rg-production-flexible-server/providers/microsoft.dbforpostgresql/flexibleservers"


def test_postgres_flexible_servers():
    result = parse_fixture("azure_postgres_flexible.json")
    primary, replica, restored = result.records
    assert primary.key == f"azure:{PG}/production-flexible-server"
    fields = dict(primary.fields)
    metadata = fields.pop("metadata")
    assert (
        fields
        == {
            "name": "production-flexible-server",
            "engine": "postgresql",
            "engine_version": "16.4",
            "host": "production-flexible-server.postgres.database.azure.com",
            "port": 5432,
            "cloud_provider": "azure",
            "region": "eastus",
            "cloud_resource_id": f"{PG}/production-flexible-server",  # lower-cased: ids are case-insensitive
            "publicly_accessible": False,
            "encrypted_at_rest": True,
            "backup_retention_days": 7,
            "status": "active",
            "tags": ["environment=production", "owner=team-payments"],
            "environment": "production",
            "owner": "team-payments",
        }
    )
    assert metadata["azure_tags"] == {"Environment": "Production", "owner": "team-payments"}
    assert metadata["azure_high_availability"] == "ZoneRedundant"

    # the replica as printed mid-provisioning: nulls are unknown, never None
    assert "host" not in replica.fields and "engine_version" not in replica.fields
    assert "backup_retention_days" not in replica.fields
    assert replica.fields["region"] == "canadacentral"  # "Canada Central"
    assert replica.relations == [
        Relation(
            "replicates_to",
            f"{PG}/production-flexible-server",
            f"{PG}/production-flexible-server-replica",
        )
    ]
    # a point-in-time restore names its source too, but it is not a replica
    assert restored.relations == []
    assert (
        restored.fields["status"] == "inactive" and restored.fields["publicly_accessible"] is True
    )
    assert restored.fields["environment"] == "development"


def test_mysql_flexible_servers():
    source, replica = parse_fixture("azure_mysql_flexible.json").records
    assert source.fields["engine"] == "mysql" and source.fields["port"] == 3306
    assert (
        source.fields["engine_version"] == "8.0.21" and source.fields["backup_retention_days"] == 14
    )
    assert source.fields["criticality"] == "high" and source.fields["owner"] == "web"
    assert replica.relations == [
        Relation(
            "replicates_to", source.key.removeprefix("azure:"), replica.key.removeprefix("azure:")
        )
    ]


def test_sql_servers_and_skipped_types():
    result = parse_fixture("azure_sql_servers.json")
    assert result.warnings == [
        "Skipped 1 resource(s) of type Microsoft.Sql/servers/databases: not a database server type "
        "this format reads."
    ]
    (server,) = result.records
    assert server.fields["engine"] == "mssql" and server.fields["port"] == 1433
    assert server.fields["host"] == "crm-sql-prod.database.windows.net"
    assert "engine_version" not in server.fields  # "12.0" is the server API version
    assert server.fields["metadata"]["azure_server_version"] == "12.0"
    assert server.fields["metadata"]["azure_minimal_tls_version"] == "1.2"
    assert server.fields["environment"] == "production"
    assert server.fields["data_classification"] == "restricted"
    assert "encrypted_at_rest" not in server.fields  # TDE is per database


def test_a_single_object_and_a_retired_single_server():
    data = json.dumps(
        {
            "id": f"{SUB}/resourceGroups/old/providers/Microsoft.DBforMariaDB/servers/legacy",
            "name": "legacy",
            "type": "Microsoft.DBforMariaDB/servers",
            "location": "West Europe",
            "fullyQualifiedDomainName": "legacy.mariadb.database.azure.com",
            "version": "10.3",
            "sslEnforcement": "Enabled",
            "publicNetworkAccess": "Disabled",
            "storageProfile": {"backupRetentionDays": 35},
            "userVisibleState": "Ready",
        }
    ).encode()
    result = parse(data)
    assert result.format == "azure-json"
    record = result.records[0]
    assert record.fields["engine"] == "mariadb" and record.fields["tls_required"] is True
    assert record.fields["backup_retention_days"] == 35 and record.fields["region"] == "westeurope"
    assert record.fields["status"] == "active"


def test_an_entry_without_an_id_fails_alone():
    data = json.dumps(
        [
            {
                "id": f"{SUB}/resourceGroups/a/providers/Microsoft.Sql/servers/ok",
                "name": "ok",
                "type": "Microsoft.Sql/servers",
            },
            {"name": "broken", "type": "Microsoft.Sql/servers"},
        ]
    ).encode()
    ok, broken = parse(data).records
    assert ok.error is None
    assert broken.key == "azure:#2" and broken.error == "Azure resource without an id or a name."
