"""`inventory-json`: the inventory's own exchange format."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.discovery.helpers import by_key, parse_fixture
from webapp.discovery import parse


@pytest.fixture(scope="module")
def inventory():
    return parse_fixture("inventory.json")


def test_file_level_source_and_generated_at(inventory):
    assert inventory.source == "cmdb-sync"
    assert inventory.generated_at == datetime(2024, 3, 12, 9, 0, tzinfo=UTC)
    # unknown keys are reported once per file, with a count
    assert inventory.warnings == ["Keys not recognised, ignored: rack_unit (2×)."]


def test_keys_are_json_n(inventory):
    assert [r.key for r in inventory.records] == [f"json:{n}" for n in range(1, 10)]
    assert [r.row for r in inventory.records] == list(range(1, 10))


def test_a_complete_asset(inventory):
    record = by_key(inventory)["json:1"]
    assert record.error is None and record.warnings == []
    fields = dict(record.fields)
    assert fields.pop("last_backup_at") == datetime(2024, 3, 12, 1, 0, tzinfo=UTC)
    assert fields == {
        "name": "billing-db",
        "engine": "postgresql",
        "engine_version": "15.4",
        "host": "pg-billing-01.corp.example.com",
        "port": 5432,
        "database_name": "billing",
        "aliases": ["pg-billing.corp.example.com", "10.1.2.3"],
        "cloud_provider": "on_prem",
        "environment": "production",
        "status": "active",
        "owner": "team-billing@example.com",
        "criticality": "critical",
        "data_classification": "confidential",
        "encrypted_at_rest": True,
        "tls_required": True,
        "publicly_accessible": False,
        "backup_retention_days": 14,
        "deletion_protection": True,
        "tags": ["owner=billing", "pci"],
        "metadata": {"rack": "r12", "cmdb_id": 4711},
        "notes": "Primary billing database.",
        "confidence": 0.95,
    }
    assert record.ip_addresses == ["10.1.2.3"]


def test_spellings_version_alias_nulls_and_tag_text(inventory):
    record = by_key(inventory)["json:2"]
    assert record.fields == {
        "name": "crm",
        "engine": "mssql",
        "engine_version": "2019",  # "version" when no engine_version
        "host": "sqlcrm01.corp.example.com",
        "port": 1433,  # "1433" as text is fine
        "environment": "production",
        "criticality": "high",
        "tags": ["crm", "team=sales"],
    }  # "owner": null and "region": null are unknown, not set to None


def test_an_api_export_reimports_without_bookkeeping(inventory):
    record = by_key(inventory)["json:3"]
    # id, created_at, stale, locked_fields… are ignored; the integer "version" is the lock
    # counter, engine_version is the engine's; "source" is the upload's business; empty lists
    # and objects say nothing
    assert record.fields == {
        "name": "orders",
        "engine": "mysql",
        "engine_version": "8.0.36",
        "host": "orders-db.corp.example.com",
        "port": 3306,
    }
    assert record.warnings == []


def test_derived_name_and_errors(inventory):
    records = by_key(inventory)
    assert records["json:4"].fields["name"] == "cache01.corp.example.com:6379"
    assert records["json:5"].error == "port 70000 is not a whole number from 1 to 65535."
    assert records["json:7"].error.startswith("No name, and no host")
    assert records["json:8"].error == "Asset 8 is not a JSON object."
    assert records["json:9"].error == "name is longer than 200 characters (201)."


def test_unmappable_values_are_warnings(inventory):
    record = by_key(inventory)["json:6"]
    assert record.error is None
    assert record.fields == {"name": "legacy", "host": "legacy01.corp.example.com"}
    assert record.warnings == [
        "engine 'informix' not recognised; left out",
        "environment 'sometimes' not recognised; left out",
        "encrypted_at_rest 'maybe' is not yes/no/true/false; left out",
        "backup_retention_days -1 is not a whole number from 0 to 3650; left out",
        "last_backup_at 'yesterday' is not an ISO 8601 date and time; left out",
        "confidence 3 is not a number between 0 and 1; left out",
    ]


def test_a_bare_list_in_a_txt_file():
    result = parse_fixture("inventory_list.txt")
    assert result.format == "inventory-json" and result.source is None
    assert result.records[0].fields == {
        "name": "analytics",
        "engine": "postgresql",
        "engine_version": "16.2",
        "host": "10.9.8.7",
        "port": 5432,
    }
    assert result.records[1].fields["engine"] == "elasticsearch"


def test_an_empty_list_and_an_empty_assets_list():
    assert parse(b"[]").format == "inventory-json"
    result = parse(b'{"source": "x", "assets": []}')
    assert result.records == [] and result.warnings == ["The file lists no assets."]


def test_typed_values_of_the_wrong_kind():
    result = parse(
        json.dumps(
            [
                {
                    "name": "a",
                    "engine": 5,
                    "host": ["x"],
                    "tags": 3,
                    "metadata": [1],
                    "aliases": {"a": 1},
                    "notes": {"x": 1},
                }
            ]
        ).encode()
    )
    record = result.records[0]
    assert record.fields == {"name": "a"}
    assert len(record.warnings) == 6


def test_bad_file_level_values_are_warnings():
    result = parse(b'{"source": 5, "generated_at": "last week", "assets": []}')
    assert result.source is None and result.generated_at is None
    assert result.warnings[:2] == [
        '"source" is not text; ignored.',
        "\"generated_at\" 'last week' is not an ISO 8601 date; ignored.",
    ]
