"""The registry, detection from content, whole-file errors, and what every parser promises."""

from __future__ import annotations

import ast
import codecs
import gc
from pathlib import Path

import pytest

from tests.discovery.helpers import FIXTURES, fixture_bytes, parse_fixture
from webapp.discovery import (
    FORMATS,
    DiscoveryError,
    Format,
    ParseResult,
    UnknownFormat,
    detect_format,
    normalise,
    parse,
)
from webapp.discovery.fields import FIELD_NAMES
from webapp.models import enums
from webapp.services.assets import FIELDS, validate

ALL_FORMATS = ["inventory-json", "csv", "nmap-xml", "aws-rds-json", "gcp-sql-json", "azure-json"]

GOOD_FIXTURES = {
    "inventory.json": "inventory-json",
    "inventory_list.txt": "inventory-json",  # JSON in a .txt file
    "cmdb_export.csv": "csv",
    "bom_semicolon.csv": "csv",
    "latin1.csv": "csv",
    "header_only.csv": "csv",
    "nmap_sv.xml": "nmap-xml",
    "nmap_scan_named.csv": "nmap-xml",  # nmap XML in a .csv file
    "nmap_ipv6_and_repeated_host.xml": "nmap-xml",
    "nmap_no_version_scan.xml": "nmap-xml",
    "aws_rds_instances.json": "aws-rds-json",
    "aws_rds_clusters.json": "aws-rds-json",
    "aws_rds_both.json": "aws-rds-json",
    "gcp_sql_instances.json": "gcp-sql-json",
    "azure_postgres_flexible.json": "azure-json",
    "azure_mysql_flexible.json": "azure-json",
    "azure_sql_servers.json": "azure-json",
}


def test_registry_lists_the_six_formats_in_spec_order():
    assert list(FORMATS) == ALL_FORMATS
    for name, fmt in FORMATS.items():
        assert isinstance(fmt, Format) and fmt.name == name


@pytest.mark.parametrize(("name", "expected"), sorted(GOOD_FIXTURES.items()))
def test_format_is_detected_from_content(name, expected):
    assert detect_format(fixture_bytes(name), filename=name) == expected
    # the file name does not matter: the content decides
    assert detect_format(fixture_bytes(name), filename="upload.bin") == expected
    assert detect_format(fixture_bytes(name)) == expected
    assert parse_fixture(name).format == expected


def test_extension_only_breaks_ties(monkeypatch):
    def tie(content):
        return 60 if content.kind == "text" else 0

    def fake_parse(content):
        return ParseResult(format="fake", records=[], warnings=[])

    monkeypatch.setitem(FORMATS, "fake", Format("fake", "test", tie, fake_parse, ("fake",)))
    data = fixture_bytes("latin1.csv")  # csv scores 60 as well
    assert detect_format(data, "x.fake") == "fake"
    assert detect_format(data, "x.csv") == "csv"
    assert detect_format(data, "x.unknown") == "csv"  # registration order


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (fixture_bytes("not_a_discovery_file.txt"), "not recognised"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
        (b'{"kind": "something else", "items": [1, 2]}', "JSON, but not"),
        (b'[{"colour": "red"}]', "JSON, but not"),
        (b'<?xml version="1.0"?><report><row/></report>', "not nmap -oX"),
        (fixture_bytes("nmap_lolz_doctype.xml"), "declares entities"),
        (b"hello;world\n1;2\n", "not recognised"),
    ],
)
def test_unknown_content_names_the_supported_formats(data, what):
    with pytest.raises(UnknownFormat) as caught:
        detect_format(data, "upload.json")
    message = str(caught.value)
    assert what in message
    assert "Supported formats: " + ", ".join(ALL_FORMATS) in message
    with pytest.raises(UnknownFormat):
        parse(data)


def test_an_unknown_format_name_is_refused_with_the_list():
    with pytest.raises(UnknownFormat, match="Supported formats: inventory-json, csv, nmap-xml"):
        parse(b"name\nx\n", format="excel")


@pytest.mark.parametrize("data", [b"", b"   \r\n\t\n", codecs.BOM_UTF8, codecs.BOM_UTF8 + b"\n\n"])
def test_an_empty_file_is_a_clear_error(data):
    with pytest.raises(DiscoveryError, match="The file is empty.") as caught:
        parse(data, "empty.csv")
    assert not isinstance(caught.value, UnknownFormat)
    with pytest.raises(DiscoveryError, match="empty"):
        parse(data, format="csv")


def test_empty_fixture_files():
    for name in ("empty.csv", "empty.json"):
        with pytest.raises(DiscoveryError, match="empty"):
            parse_fixture(name)


def test_invalid_json_names_line_and_column():
    with pytest.raises(DiscoveryError) as caught:
        parse_fixture("invalid.json")
    assert "Invalid JSON at line 4, column 42" in str(caught.value)
    assert not isinstance(caught.value, UnknownFormat)


def test_truncated_json_names_line_and_column_and_says_truncated():
    with pytest.raises(DiscoveryError, match=r"Invalid JSON at line \d+, column \d+: .*truncated"):
        parse_fixture("truncated.json")


def test_json_nested_too_deeply_is_an_error_not_a_crash():
    with pytest.raises(DiscoveryError, match="nested too deeply"):
        parse(b"[" * 200_000 + b"]" * 200_000)


def test_json_that_is_not_utf8_says_where():
    with pytest.raises(DiscoveryError, match=r"not valid UTF-8 text: invalid byte at position 25"):
        parse(b'{"assets": [{"name": "caf\xe9"}]}')


def test_json_with_a_byte_order_mark_parses():
    result = parse(codecs.BOM_UTF8 + b'[{"name": "a", "engine": "redis"}]')
    assert result.records[0].fields == {"name": "a", "engine": "redis"}


def test_a_forced_format_that_does_not_fit_is_a_clear_error():
    with pytest.raises(DiscoveryError, match="describe-db-instances"):
        parse(fixture_bytes("inventory.json"), format="aws-rds-json")
    with pytest.raises(DiscoveryError, match="root element is <assets>"):
        parse(b"<assets><asset/></assets>", format="nmap-xml")
    with pytest.raises(DiscoveryError, match="names no asset field"):
        parse(b"colour,size\nred,1\n", format="csv")


def test_a_repeated_record_key_fails_the_later_record():
    data = (
        b'{"DBInstances": [{"DBInstanceIdentifier": "a", "Engine": "postgres"},'
        b' {"DBInstanceIdentifier": "b", "Engine": "mysql"},'
        b' {"DBInstanceIdentifier": "a", "Engine": "postgres"}]}'
    )
    records = parse(data).records
    assert [r.key for r in records] == ["aws_rds:a", "aws_rds:b", "aws_rds:a"]
    assert records[0].error is None and records[1].error is None
    assert (
        records[2].error == "Duplicate record: aws_rds:a already appears as record 1 of this file."
    )


def test_parsing_restores_the_garbage_collector_even_on_failure():
    assert gc.isenabled()
    parse_fixture("nmap_sv.xml")
    assert gc.isenabled()
    with pytest.raises(DiscoveryError):
        parse_fixture("nmap_billion_laughs.xml")
    assert gc.isenabled()
    gc.disable()
    try:
        parse_fixture("cmdb_export.csv")
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- promises every parser keeps -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GOOD_FIXTURES))
def test_record_fields_are_accepted_by_the_asset_service(name):
    """Every valid record's fields pass webapp.services.assets.validate unchanged: the parsers
    speak the service layer's field names and value forms, and never emit None."""
    result = parse_fixture(name)
    for record in result.records:
        assert record.key and isinstance(record.warnings, list)
        assert None not in record.fields.values(), record.key
        if record.error:
            continue
        cleaned = validate(dict(record.fields), partial=True)
        assert set(cleaned) == set(record.fields)
        if "engine" in record.fields:
            validate(dict(record.fields), partial=False)  # name and engine: enough to create
        assert isinstance(record.fields["name"], str) and record.fields["name"]
        for relation in record.relations:
            assert relation.kind in ("replicates_to", "member_of")
            assert relation.source_key != relation.target_key
        for address in record.ip_addresses:
            assert normalise.ip(address) == address


@pytest.mark.parametrize("name", sorted(GOOD_FIXTURES))
def test_parsing_is_deterministic(name):
    assert parse_fixture(name) == parse_fixture(name)


def test_the_package_imports_neither_flask_nor_the_database_layer():
    forbidden = ("flask", "sqlalchemy", "webapp.models", "webapp.services", "webapp.extensions")
    package = Path(__file__).resolve().parents[2] / "webapp" / "discovery"
    modules = sorted(package.glob("*.py"))
    assert len(modules) >= 9
    for module in modules:
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert not name.startswith(forbidden), f"{module.name} imports {name}"


def test_parsers_know_every_asset_field_of_the_service_layer():
    # "source" is the upload's label, never a per-record value
    assert set(FIELD_NAMES) == set(FIELDS) - {"source"}


def test_spelling_tables_use_the_model_enum_values():
    assert tuple(e.value for e in enums.Engine) == normalise.ENGINES
    assert tuple(e.value for e in enums.Environment) == normalise.ENVIRONMENTS
    assert tuple(e.value for e in enums.AssetStatus) == normalise.STATUSES
    assert tuple(e.value for e in enums.Criticality) == normalise.CRITICALITIES
    assert tuple(e.value for e in enums.DataClassification) == normalise.CLASSIFICATIONS
    assert tuple(e.value for e in enums.CloudProvider) == normalise.CLOUD_PROVIDERS
    tables = (
        (normalise.ENGINE_SPELLINGS, normalise.ENGINES),
        (normalise.ENVIRONMENT_SPELLINGS, normalise.ENVIRONMENTS),
        (normalise.STATUS_SPELLINGS, normalise.STATUSES),
        (normalise.CRITICALITY_SPELLINGS, normalise.CRITICALITIES),
        (normalise.CLASSIFICATION_SPELLINGS, normalise.CLASSIFICATIONS),
        (normalise.CLOUD_PROVIDER_SPELLINGS, normalise.CLOUD_PROVIDERS),
    )
    for table, values in tables:
        assert set(table.values()) == set(values)


def test_every_fixture_is_used():
    used = set(GOOD_FIXTURES) | {
        "invalid.json",
        "truncated.json",
        "empty.json",
        "empty.csv",
        "not_a_discovery_file.txt",
        "nmap_billion_laughs.xml",
        "nmap_lolz_doctype.xml",
        "nmap_xxe.xml",
        "nmap_external_dtd.xml",
        "nmap_truncated.xml",
    }
    assert {p.name for p in FIXTURES.iterdir() if not p.name.startswith(".")} == used
