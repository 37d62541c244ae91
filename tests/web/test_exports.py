"""Exports of the asset list (SPEC §5, §8, §9; issue 13, part 2): `Export CSV`, `Export JSON`
and `Export XLSX` on /assets, and `flask export`, from one service (webapp/services/exports.py).

What a user would notice: the file holds exactly the rows the list shows for that filter and
sort, in that order, with the API's values; a spreadsheet never runs a cell as a formula; Excel
reads the CSV as UTF-8; the JSON imports back as `inventory-json` changing nothing; no secret
leaves; a viewer cannot export; every export is one audit event; and the number of queries grows
with the pages of rows, not the rows.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import math
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, func, literal_column, select, update

from tests.factories import ACTOR, make_asset
from tests.web.pages import parse
from webapp.models import Asset, AuditAction, AuditEvent
from webapp.services import assets as asset_service
from webapp.services import export_xlsx, exports, imports

SECRET = "postgresql://orders_app:Sup3r-s3cret-pw@db1.internal:5432/orders"
RICH = {
    "engine_version": "8.0.36", "database_name": "orders", "aliases": ["10.0.0.5", "orders.internal"],
    "cloud_provider": "aws", "region": "eu-west-1", "criticality": "critical",
    "data_classification": "restricted", "encrypted_at_rest": True, "tls_required": False,
    "backup_retention_days": 14, "last_backup_at": "2026-11-01T03:00:00+00:00",
    "metadata": {"instance_class": "db.r6g.large", "multi_az": True}, "notes": "Primary, café.",
    "tags": ["pci", "team=payments"], "connection_string": SECRET,
}


def _inventory(session) -> list[Asset]:  # type: ignore[no-untyped-def]
    """Nine MySQL assets (varied fields, one in the trash) and three PostgreSQL ones."""
    made = []
    for i in range(9):
        extra = RICH if i % 3 == 0 else {"owner": None} if i % 3 == 1 else {"tags": ["legacy"]}
        made.append(make_asset(session, name=f"orders-{i}-café", engine="mysql", port=3306,
                               host=f"mysql{i}.example.com", **extra))
    for i in range(3):
        made.append(make_asset(session, name=f"pg-{i}", engine="postgresql"))
    asset_service.delete(session, ACTOR, made[4].id)
    return made


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(codecs.BOM_UTF8)
    return list(csv.DictReader(io.StringIO(data[3:].decode("utf-8"), newline="")))


def _json_lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode("utf-8").split("\n") if line]


def _as_csv_cell(value: Any) -> str:
    """An API value as the CSV export must show it (written apart from the service's code)."""
    if value is None or value == [] or value == {}:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        text = "; ".join(value)
    elif isinstance(value, dict):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _api_list(client, make_token, query: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    response = client.get(f"/api/v1/assets?limit=500&{query}", headers=make_token("viewer").headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["items"]


def _filter(event_: AuditEvent) -> dict[str, Any]:
    """The filter an export event recorded, a multi-value filter of one value as that value."""
    recorded = event_.changes["filter"][1]
    return {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in recorded.items()}


def _events(session, action: AuditAction = AuditAction.export) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                .order_by(AuditEvent.id)))


# --- the rows: exactly the list's, in its order, with the API's values ---------------------------

@pytest.mark.parametrize("query", [
    "engine=mysql&sort=-name",
    "engine=mysql&include_deleted=true&sort=criticality",
    "q=orders&tag=pci",
    "sort=-updated_at",
])
def test_exports_match_the_api_list_row_by_row(client, session, login_as, make_token, query):
    _inventory(session)
    listed = _api_list(client, make_token, query)
    assert listed
    login_as("analyst")

    response = client.get(f"/assets/export?format=csv&{query}")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="assets-')
    assert response.headers["X-Total-Count"] == str(len(listed))
    rows = _csv_rows(response.data)
    assert [r["id"] for r in rows] == [a["id"] for a in listed]
    for row, asset in zip(rows, listed, strict=True):
        assert list(row) == list(exports.COLUMNS)
        for column, text in row.items():
            if column == "metadata" and asset[column]:  # the stored JSON, keys in its order
                assert json.loads(text) == asset[column], asset["name"]
                continue
            assert text == _as_csv_cell(asset[column]), (asset["name"], column)

    lines = _json_lines(client.get(f"/assets/export?format=json&{query}").data)
    assert [line["id"] for line in lines] == [a["id"] for a in listed]
    for line, asset in zip(lines, listed, strict=True):
        assert sorted(line) == sorted(exports.COLUMNS)
        assert line == {column: asset[column] for column in exports.COLUMNS}


def test_columns_come_from_the_catalogue_and_hold_no_secret(client, session, login_as):
    asset = make_asset(session, name="orders-db", **RICH)
    encrypted = asset.connection_string_encrypted
    login_as("analyst")
    assert "connection_string" not in exports.COLUMNS
    assert exports.COLUMNS[0] == "id" and "has_connection_string" in exports.COLUMNS
    assert {"created_at", "updated_at", "tags", "metadata", "notes"} <= set(exports.COLUMNS)
    for fmt in ("csv", "json", "xlsx"):
        data = client.get(f"/assets/export?format={fmt}").data
        texts = [data]
        if fmt == "xlsx":
            with zipfile.ZipFile(io.BytesIO(data)) as book:
                texts = [book.read(name) for name in book.namelist()]
        joined = b"".join(texts)
        assert b"orders-db" in joined, fmt
        for secret in (SECRET, "Sup3r-s3cret-pw", encrypted):
            assert secret.encode() not in joined, fmt
    row = _csv_rows(client.get("/assets/export?format=csv").data)[0]
    assert row["has_connection_string"] == "true"
    assert row["tags"] == "pci; team=payments"
    assert row["aliases"] == "10.0.0.5; orders.internal"


# --- formula-safe, UTF-8 with BOM ------------------------------------------------------------

@pytest.mark.parametrize("value", ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)",
                                   "=cmd|' /C calc'!A0"])
def test_a_cell_a_spreadsheet_would_run_gets_a_leading_quote(client, session, login_as, value):
    make_asset(session, name=value, owner=value, notes=value, tags=[value.lower()[:60]])
    make_asset(session, name="plain", owner="a-b@example.com", notes="x = y")
    login_as("analyst")
    rows = {r["owner"]: r for r in _csv_rows(client.get("/assets/export?format=csv").data)}
    row = rows["'" + value]
    assert row["name"] == row["notes"] == "'" + value
    assert row["tags"] == "'" + value.lower()[:60]
    assert rows["a-b@example.com"]["notes"] == "x = y"  # only a first character counts
    # JSON keeps the value as it is: it is data, not a spreadsheet
    lines = _json_lines(client.get("/assets/export?format=json").data)
    assert value in [line["name"] for line in lines]


@pytest.mark.parametrize("value", ["=1", "+1", "-1", "@a", "\tx", "\rx", "\t=1"])
def test_formula_safe_covers_tab_and_carriage_return(value):
    # tab and CR cannot start a stored text field (the service strips them), so unit-tested
    assert exports.formula_safe(value) == "'" + value
    assert exports.formula_safe("a" + value) == "a" + value
    assert exports.formula_safe("") == ""


def test_csv_is_utf8_with_a_bom_and_a_header(client, session, login_as):
    make_asset(session, name="Ünïcødé-数据库", owner="josé@example.com")
    login_as("analyst")
    data = client.get("/assets/export?format=csv").data
    assert data.startswith(codecs.BOM_UTF8 + b"id,name,engine,")
    text = data.decode("utf-8-sig")
    assert "Ünïcødé-数据库" in text and "josé@example.com" in text
    assert text.endswith("\r\n")
    assert len(text.split("\r\n")) == 3  # header, one row, end


def test_an_empty_export_is_the_header_alone(client, session, login_as):
    make_asset(session, name="orders-db")
    login_as("analyst")
    response = client.get("/assets/export?format=csv&q=no-such-asset")
    assert response.status_code == 200 and response.headers["X-Total-Count"] == "0"
    assert _csv_rows(response.data) == []
    assert client.get("/assets/export?format=json&q=no-such-asset").data == b""
    xlsx = client.get("/assets/export?format=xlsx&q=no-such-asset").data
    assert zipfile.ZipFile(io.BytesIO(xlsx)).testzip() is None


def test_xlsx_is_a_workbook_of_text_not_formulas(client, session, login_as):
    make_asset(session, name="=1+1", **RICH)
    login_as("analyst")
    response = client.get("/assets/export?format=xlsx")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response.headers["Content-Disposition"].endswith('.xlsx"')
    with zipfile.ZipFile(io.BytesIO(response.data)) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        strings = book.read("xl/sharedStrings.xml").decode() if "xl/sharedStrings.xml" in book.namelist() else ""
    assert "<f>" not in sheet  # no cell is a formula
    assert "=1+1" in sheet + strings and "team=payments" in sheet + strings


# --- the round trip -----------------------------------------------------------------------------

def test_exported_json_imports_back_as_inventory_json_changing_nothing(client, session, login_as):
    made = _inventory(session)
    made.append(make_asset(session, name="rds-orders", engine="mysql", cloud_provider="aws",
                           cloud_resource_id="arn:aws:rds:eu-west-1:123:db:rds-orders"))
    # assets an import created, from another source, with the values it set
    scan = (b'{"source": "cmdb", "assets": [{"name": "scanned-db", "engine": "PostgreSQL 15.4",'
            b' "host": "scan.example.com", "port": 5432, "owner": "ops@example.com",'
            b' "tags": ["found"], "confidence": 0.8}]}')
    first = imports.execute(session, imports.create_run(session, ACTOR, data=scan,
                                                        filename="cmdb.json").id)
    assert first.created == 1
    made.append(first)
    login_as("analyst")
    data = client.get("/assets/export?format=json").data
    assert len(_json_lines(data)) == len(made) - 1  # the trashed one is not in the list
    assets_before = session.scalar(select(func.count()).select_from(Asset))
    versions = dict(session.execute(select(Asset.id, Asset.version)).all())

    run = imports.create_run(session, ACTOR, data=data, filename="assets-export.jsonl")
    assert run.format == "inventory-json"
    run = imports.execute(session, run.id)
    assert run.status.value == "succeeded", run.error
    assert (run.created, run.updated, run.flagged, run.failed) == (0, 0, 0, 0)
    assert run.unchanged == len(made) - 1
    assert run.warnings == []
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Asset)) == assets_before
    assert dict(session.execute(select(Asset.id, Asset.version)).all()) == versions


def test_a_one_asset_export_imports_back_too(client, session, login_as):
    make_asset(session, name="lonely-db", host="lonely.example.com", port=5432, tags=["solo"])
    login_as("analyst")
    data = client.get("/assets/export?format=json").data
    assert data.count(b"\n") == 1
    run = imports.execute(session, imports.create_run(session, ACTOR, data=data,
                                                      filename="one.jsonl").id)
    assert run.format == "inventory-json"
    assert (run.created, run.updated, run.unchanged) == (0, 0, 1)


# --- roles, audit, bad input ----------------------------------------------------------------

def test_a_viewer_gets_403_and_sees_no_export_buttons(client, session, login_as):
    make_asset(session, name="orders-db")
    login_as("viewer")
    page = parse(client.get("/assets").data)
    assert page.find("nav", class_="exports") is None
    assert "Export CSV" not in page.text and "orders-db" in page.text
    for fmt in ("csv", "json", "xlsx"):
        response = client.get(f"/assets/export?format={fmt}")
        assert response.status_code == 403
        assert b"orders-db" not in response.data
    assert _events(session) == []


def test_the_buttons_export_the_current_filter_and_sort(client, session, login_as):
    make_asset(session, name="orders-db", engine="mysql")
    login_as("analyst")
    url = "/assets?engine=mysql&q=orders&sort=-name&limit=25&owner="
    for headers in ({}, {"HX-Request": "true"}):  # the full page and the htmx results block
        nav = parse(client.get(url, headers=headers).data).find("nav", class_="exports")
        assert nav is not None
        links = {a.text: a.get("href") for a in nav.find_all("a")}
        assert set(links) == {"Export CSV", "Export JSON", "Export XLSX"}
        href = links["Export JSON"]
        assert href.startswith("/assets/export?format=json&")
        assert sorted(href.split("?")[1].split("&")) == ["engine=mysql", "format=json",
                                                         "q=orders", "sort=-name"]
        assert client.get(href).status_code == 200


def test_an_export_is_one_audit_event_with_the_filter_and_the_count(client, session, login_as):
    _inventory(session)
    user = login_as("analyst")
    before = session.scalar(select(func.count()).select_from(AuditEvent))
    response = client.get("/assets/export?format=csv&engine=mysql&stale=false&sort=-name")
    rows = _csv_rows(response.data)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == before + 1
    (event_,) = _events(session)
    assert event_.actor_id == user.id and event_.actor_label == user.email
    assert event_.entity_type == "asset" and event_.entity_id is None
    assert set(event_.changes) == {"format", "count", "filter"}
    assert event_.changes["format"] == [None, "csv"]
    assert event_.changes["count"] == [None, len(rows)]
    assert event_.changes["filter"][0] is None
    assert _filter(event_) == {"engine": "mysql", "stale": False, "sort": "-name"}
    assert event_.message == f"exported {len(rows)} assets as CSV"
    assert len(rows) == 8


@pytest.mark.parametrize("query,field", [
    ("format=pdf", "format"),
    ("engine=nope", "engine"),
    ("sort=password", "sort"),
    ("stale=maybe", "stale"),
    ("q=%00", "q"),
    ("owner=%ED%A0%80", "owner"),
])
def test_a_bad_filter_or_format_is_a_422_not_a_500(client, session, login_as, query, field):
    login_as("analyst")
    fmt = "" if query.startswith("format=") else "format=csv&"
    response = client.get(f"/assets/export?{fmt}{query}")
    assert response.status_code == 422, response.data[-500:]
    assert response.mimetype == "text/html"
    assert _events(session) == []


def test_no_format_is_a_422(client, session, login_as):
    login_as("analyst")
    assert client.get("/assets/export").status_code == 422


# --- queries: one per page of rows ------------------------------------------------------------

@contextmanager
def _statements(db, monkeypatch) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Every statement sent: through SQLAlchemy, and the COPYs sent on psycopg's own cursor."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    copy = psycopg.Cursor.copy

    def record_copy(cursor, statement, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(str(statement))
        return copy(cursor, statement, *args, **kwargs)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with monkeypatch.context() as patched:
            patched.setattr(psycopg.Cursor, "copy", record_copy)
            yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_queries_do_not_grow_with_the_pages_of_rows(client, session, db, login_as, monkeypatch):
    """Tags are read with their rows (one statement: a COPY on PostgreSQL, elsewhere through a
    server-side cursor), so a longer export costs more chunks, never more queries: not one per
    asset, nor per page."""
    monkeypatch.setattr(exports, "PAGE_SIZE", 4)
    monkeypatch.setattr(exports, "CHUNK_BYTES", 1)  # a chunk per row
    login_as("analyst")
    counts = {}
    made = 0
    for total in (5, 18):
        while made < total:
            make_asset(session, name=f"q-{made:03d}", tags=["pci", "gdpr"][: 1 + made % 2])
            made += 1
        client.get("/assets/export?format=json")  # warm up
        with _statements(db, monkeypatch) as seen:
            lines = _json_lines(client.get("/assets/export?format=json").data)
        assert len(lines) == total
        assert lines[-1]["tags"] == (["gdpr", "pci"] if (total - 1) % 2 else ["pci"])
        counts[total] = len(seen)
        assert len([s for s in seen if "asset_tags" in s]) == 1  # the export's own statement
    assert math.ceil(18 / 4) > math.ceil(5 / 4)
    assert counts[18] == counts[5]


# --- the command line ---------------------------------------------------------------------------

def test_flask_export_writes_the_same_file_and_is_audited(client, session, login_as, runner,
                                                          tmp_path):
    _inventory(session)
    login_as("analyst")
    web = client.get("/assets/export?format=json&engine=mysql&sort=-name").data
    out = tmp_path / "mysql.jsonl"
    result = runner.invoke(args=["export", "--format", "json", "--engine", "mysql",
                                 "--sort", "-name", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Exported 8 assets as JSON Lines to" in result.output
    assert out.read_bytes() == web
    event_ = _events(session)[-1]
    assert event_.actor_label == "cli"
    assert _filter(event_) == {"engine": "mysql", "sort": "-name"}

    result = runner.invoke(args=["export", "--format", "csv", "--q", "pg-", "--not-stale"])
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in _csv_rows(result.stdout_bytes)] == ["pg-0", "pg-1", "pg-2"]
    assert re.search(r"^Exported 3 assets as CSV to standard output in [\d.]+s\.$", result.stderr, re.M)


def test_flask_export_refuses_a_bad_filter(runner, session):
    result = runner.invoke(args=["export", "--format", "csv", "--engine", "excel"])
    assert result.exit_code == 2
    assert "error: engine: Choose one of" in result.stderr
    assert _events(session) == []


# --- the same service on SQLite, and very long spreadsheets ---------------------------------

def test_the_export_reads_the_same_on_sqlite(sqlite_app):
    from webapp.extensions import db as sqlite_db
    from webapp.services import asset_search
    from webapp.services.actor import Actor

    session = sqlite_db.session
    asset = make_asset(session, name="lite-db", **RICH)
    make_asset(session, name="bare-db", tags=[])
    started = exports.start(session, Actor.cli(), asset_search.parse_query({"sort": "name"}), "json")
    assert started.count == 2
    bare, lite = _json_lines(b"".join(started.chunks))
    assert (bare["name"], bare["tags"], bare["aliases"], bare["metadata"]) == ("bare-db", [], [], {})
    assert lite["tags"] == ["pci", "team=payments"]
    assert lite["metadata"] == RICH["metadata"] and lite["aliases"] == RICH["aliases"]
    assert lite["last_backup_at"] == "2026-11-01T03:00:00+00:00"
    assert lite["created_at"] == asset.created_at.isoformat() and lite["id"] == str(asset.id)
    assert lite["has_connection_string"] is True and lite["encrypted_at_rest"] is True
    rows = _csv_rows(b"".join(exports.start(session, Actor.cli(),
                                            asset_search.parse_query({}), "csv").chunks))
    assert rows[1]["tags"] == "pci; team=payments" and rows[1]["tls_required"] == "false"


def test_a_spreadsheet_past_its_row_limit_goes_on_to_another_sheet(client, session, login_as,
                                                                   monkeypatch):
    monkeypatch.setattr(export_xlsx, "XLSX_MAX_ROWS", 3)  # a header and two rows per sheet
    for i in range(5):
        make_asset(session, name=f"row-{i}")
    login_as("analyst")
    response = client.get("/assets/export?format=xlsx")
    assert response.is_streamed
    with zipfile.ZipFile(io.BytesIO(response.data)) as book:
        sheets = sorted(n for n in book.namelist() if n.startswith("xl/worksheets/sheet"))
        assert len(sheets) == 3
        last = book.read(sheets[-1]).decode()
        workbook = book.read("xl/workbook.xml").decode()
    assert "row-4" in last and "row-3" not in last
    assert 'name="Assets"' in workbook and 'name="Assets 3"' in workbook


# --- PostgreSQL writes CSV and JSON itself (one COPY): the same file as Python writes -----------

def _tricky(session) -> list[Asset]:  # type: ignore[no-untyped-def]
    """Assets whose cells test each way a cell is written: formula starts, lists, JSON with
    quotes, line breaks and unicode, empty text beside none, booleans, whole and other floats,
    timestamps with and without microseconds, the trash."""
    made = [
        make_asset(session, name="=1+1", owner="+cmd@example.com", host="-h.example.com",
                   database_name="@db", engine_version="-8.0", region="eu-west-1",
                   notes='line one\r\nline "two", with a comma\n=not a start',
                   tags=["=sum", "b-tag"], aliases=["-alias", "x,y", "ünï"],
                   metadata={"q": 'he said "hi"\nthen left', "ü": "数据", "none": None,
                             "nested": {"a": [1, 2.5, True]}, "=k": "=v"},
                   encrypted_at_rest=True, tls_required=False, deletion_protection=None,
                   backup_retention_days=0, last_backup_at="2026-11-01T03:00:00+00:00",
                   connection_string="postgresql://u:p@h/d", cloud_provider="aws",
                   cloud_resource_id="arn:aws:rds:eu-west-1:1:db:x", criticality="high",
                   data_classification="internal"),
        make_asset(session, name="plain-db", owner=None, port=None, host=None, tags=[],
                   notes="café; 数据库 \\ back\\slash\t tab", metadata={},
                   last_backup_at="2026-11-01T03:00:00.000500+00:00"),
        make_asset(session, name="Ünïcødé-数据库", engine="mysql", tags=["pci"],
                   aliases=["a@b"], publicly_accessible=True),
        make_asset(session, name="trashed-db", tags=["gone"]),
    ]
    asset_service.delete(session, ACTOR, made[3].id)
    # values only imports or old data set: an empty text beside none, scores, seen times, and
    # stored JSON that is not a list or a mapping
    for asset, values in zip(made, [
        {"confidence": 1.0, "first_seen_at": literal_column("'2026-01-02T03:04:05.123456+00'"),
         "last_seen_at": literal_column("date_trunc('second', now())")},
        {"confidence": 0.0, "engine_version": "", "source": "@scanner", "database_name": ""},
        {"confidence": 0.123456789, "metadata_": literal_column("'-5'::jsonb"),
         "aliases": literal_column("'{}'::jsonb")},
        {"confidence": 1e-05, "aliases": literal_column("'null'::jsonb"),
         "metadata_": literal_column("'[]'::jsonb")},
    ], strict=True):
        session.execute(update(Asset).where(Asset.id == asset.id).values(**values))
    session.commit()
    return made


def _both_ways(session, monkeypatch, fmt: str, args: dict[str, str]) -> tuple[bytes, bytes]:  # type: ignore[no-untyped-def]
    """(PostgreSQL's COPY, Python's writer) of the same export."""
    from webapp.services import asset_search
    from webapp.services.actor import Actor

    def export() -> bytes:
        return b"".join(exports.start(session, Actor.cli(), asset_search.parse_query(args),
                                      fmt).chunks)

    copied = export()
    with monkeypatch.context() as patched:
        patched.setitem(exports.FORMATS, fmt, dataclasses.replace(exports.FORMATS[fmt], copy=None))
        written = export()
    return copied, written


BOTH_WAYS_QUERIES = [
    {"include_deleted": "true", "sort": "-updated_at"},
    {"sort": "criticality"},
    {"q": "db", "engine": ["postgresql", "mysql"], "owner": "+cmd", "tag": "=sum",
     "stale": "false"},
]


@pytest.mark.parametrize("args", BOTH_WAYS_QUERIES)
def test_postgresql_writes_the_csv_python_writes(require_postgres, session, monkeypatch, args):
    _tricky(session)
    copied, written = _both_ways(session, monkeypatch, "csv", args)
    assert copied.startswith(exports.CSV_HEAD) and written.startswith(exports.CSV_HEAD)
    copied_rows = list(csv.reader(io.StringIO(copied[3:].decode(), newline="")))
    written_rows = list(csv.reader(io.StringIO(written[3:].decode(), newline="")))
    assert len(written_rows) > 1
    assert copied_rows == written_rows
    # the same line ends: CRLF after each row, a cell's own line breaks kept as they are
    assert copied.count(b"\r\n") == written.count(b"\r\n")
    assert copied.endswith(b"\r\n")
    if "include_deleted" in args:
        cells = {row[1]: dict(zip(exports.COLUMNS, row, strict=True)) for row in copied_rows[1:]}
        formula = cells["'=1+1"]
        assert (formula["owner"], formula["host"], formula["tags"], formula["aliases"]) == (
            "'+cmd@example.com", "'-h.example.com", "'=sum; b-tag", "'-alias; x,y; ünï")
        assert formula["notes"].startswith("line one\r\nline")
        assert formula["confidence"] == "1.0" and formula["last_backup_at"].endswith("00:00")
        assert cells["Ünïcødé-数据库"]["metadata"] == "'-5"
        assert cells["plain-db"]["last_backup_at"] == "2026-11-01T03:00:00.000500+00:00"


@pytest.mark.parametrize("args", BOTH_WAYS_QUERIES)
def test_postgresql_writes_the_json_lines_python_writes(require_postgres, session, monkeypatch,
                                                        args):
    _tricky(session)
    copied, written = _both_ways(session, monkeypatch, "json", args)
    assert copied.endswith(b"\n") and copied.count(b"\n") == written.count(b"\n") > 0
    # the same keys in the same order, the same values of the same JSON types (1.0 is not 1)
    copied_objects = [json.loads(line, object_pairs_hook=list) for line in copied.splitlines()]
    written_objects = [json.loads(line, object_pairs_hook=list) for line in written.splitlines()]
    assert json.dumps(copied_objects) == json.dumps(written_objects)
    assert copied == written  # byte for byte, even: both compact, the stored JSON as it is


def test_an_export_read_in_part_leaves_the_session_usable(require_postgres, session):
    from webapp.services import asset_search
    from webapp.services.actor import Actor

    _tricky(session)
    started = exports.start(session, Actor.cli(), asset_search.parse_query({}), "csv")
    assert next(started.chunks) == exports.CSV_HEAD
    assert next(started.chunks).count(b"\r\n") >= 1
    started.chunks.close()  # the download was cut short
    assert session.scalar(select(func.count()).select_from(Asset)) == 4
