"""Exports of the asset list (SPEC §5, §7, §8): CSV, JSON Lines and XLSX of exactly a list's
filter and sort, streamed in constant memory at any size.

`start(session, actor, query, fmt)` counts the rows the filter matches, writes one `export`
audit event (format, filter, that count), commits, and hands back an `Export` whose `chunks`
read the rows lazily: one statement in the list's order, tags included, through a server-side
cursor (`yield_per`). Nothing holds more than a page of rows, so memory stays flat at any size
(`make bench` measures it). The page, the API and `flask export` all come here; the routes only
wrap `chunks` in a streamed response.

Columns come from the field catalogue (`models/asset_fields.py`: exportable, never secret), with
the id first and `has_connection_string` and the timestamps last. A JSON line is an
`inventory-json` asset object (its JSON columns, aliases and metadata, last), so an exported
file imports back as `inventory-json` changing nothing: the id, the timestamps and
`has_connection_string` are bookkeeping its parser ignores.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import xlsxwriter
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Select,
    String,
    Text,
    cast,
    func,
    select,
    text,
    type_coerce,
)
from sqlalchemy.orm import Session

from webapp.models import Asset, AuditAction, Tag, asset_tags
from webapp.models.asset_fields import CATALOGUE, FieldSpec
from webapp.models.base import utcnow
from webapp.services import asset_search, audit
from webapp.services.actor import Actor
from webapp.services.errors import ValidationFailed

# rows per page: one FETCH from the cursor, one chunk of output
PAGE_SIZE = 2_000
FIELDS: tuple[FieldSpec, ...] = tuple(f for f in CATALOGUE if f.exportable and not f.secret)
TIMESTAMPS = ("created_at", "updated_at", "first_seen_at", "last_seen_at", "deleted_at")
COLUMNS: tuple[str, ...] = ("id", *(f.name for f in FIELDS), "has_connection_string", *TIMESTAMPS)
# what each column holds, for the writers: the catalogue's kinds, and the extra columns'
KINDS: dict[str, str] = {
    "id": "id", **{f.name: f.kind for f in FIELDS}, "has_connection_string": "boolean",
    **dict.fromkeys(TIMESTAMPS, "timestamp"),
}
TAGS_AT = COLUMNS.index("tags")
# aliases and metadata are read as the JSON text the database holds (see selected_columns)
JSON_KINDS = ("list", "mapping")
# a spreadsheet reads a cell starting with one of these as a formula (SPEC §9)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
LIST_SEPARATOR = "; "  # what the CSV importer splits aliases and tags on
# the filter an audit event records: every field of the query but how a page is shown (its
# position, its size, whether its total is counted exactly)
NOT_FILTER = frozenset({"limit", "after", "before", "cursor", "count"})

Page = list[list[Any]]  # rows, each a list of values in COLUMNS order


@dataclass(frozen=True)
class ExportFormat:
    name: str
    label: str
    mimetype: str
    extension: str
    write: Callable[[Iterable[Page]], Iterator[bytes]]


FORMATS: dict[str, ExportFormat] = {}


def register(fmt: ExportFormat) -> ExportFormat:
    FORMATS[fmt.name] = fmt
    return fmt


@dataclass
class Export:
    """A started export: audited, not yet read. Iterating `chunks` reads the rows."""

    format: ExportFormat
    count: int  # rows the filter matched when the export was audited
    filename: str
    chunks: Iterator[bytes]


def start(
    session: Session,
    actor: Actor,
    query: asset_search.AssetQuery,
    fmt: str,
    *,
    page_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Export:
    """Audit an export of the assets `query` matches, in its sort order, and return it unread.

    The `export` event (format, filter, the exact count of matching rows) is committed before a
    byte is produced: data that starts to leave is on record even if the download is cut short.
    ValidationFailed (422) names an unknown format. `progress(rows)` is called after each page.
    """
    export_format = FORMATS.get(fmt or "")
    if export_format is None:
        raise ValidationFailed({"format": f"Choose one of: {', '.join(FORMATS)}."},
                               "Choose an export format.")
    stmt = asset_search.filtered(session, query)
    count = session.scalar(
        stmt.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)
    ) or 0
    filter_ = describe(query)
    audit.record(
        session, actor, AuditAction.export, "asset", None,
        changes={"format": [None, export_format.name], "count": [None, count],
                 "filter": [None, filter_]},
        message=f"exported {count:,} asset{'' if count == 1 else 's'} as {export_format.label}",
    )
    session.commit()
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    ordered = _ordered(stmt, query, session.get_bind().dialect.name)
    rows = _pages(session, ordered, page_size or PAGE_SIZE, progress)
    return Export(export_format, count, f"assets-{stamp}.{export_format.extension}",
                  export_format.write(rows))


def describe(query: asset_search.AssetQuery) -> dict[str, Any]:
    """The query's filter and sort as the audit event records them: the sort, and each filter
    that differs from its default (`stale=False`, "not stale", is a filter; no filter is not)."""
    described = {}
    for f in dataclasses.fields(query):
        value = getattr(query, f.name)
        if f.name in NOT_FILTER or value in ("", [], ()):
            continue
        if f.name == "sort" or f.default is dataclasses.MISSING or value != f.default:
            described[f.name] = value
    return described


def selected_columns(dialect: str) -> list[ColumnElement[Any]]:
    """The SELECT list, in COLUMNS order (`bench/exports.py` builds its COPY floor from
    COLUMNS the same way: tags aggregated per asset, the connection string only as a flag)."""
    postgresql = dialect == "postgresql"
    columns: list[ColumnElement[Any]] = [Asset.id]
    for f in FIELDS:
        column: ColumnElement[Any] = getattr(Asset, f.attribute or f.name, None)
        if f.kind == "tags":
            column = _tag_names(postgresql)
        elif f.kind == "choice":  # the stored value as it is: no enum member made per cell
            column = type_coerce(column, String())
        elif f.kind in JSON_KINDS:  # the stored JSON text: not decoded to be encoded again
            column = cast(column, Text())
        elif f.kind == "timestamp":
            column = _moment(column, postgresql)
        columns.append(column.label(f.name))
    columns.append(Asset.connection_string_encrypted.is_not(None).label("has_connection_string"))
    columns += [_moment(getattr(Asset, name), postgresql).label(name) for name in TIMESTAMPS]
    return columns


def _tag_names(postgresql: bool) -> ColumnElement[Any]:
    """The asset's tag names in name order, read with the row: on PostgreSQL an array (a list
    once fetched), elsewhere a JSON list (decoded in _pages). No query per asset or per page."""
    names = (
        select(Tag.name)
        .join(asset_tags, asset_tags.c.tag_id == Tag.id)
        .where(asset_tags.c.asset_id == Asset.id)
        .order_by(Tag.name)
    )
    if postgresql:
        return func.array(names.scalar_subquery())
    # the names in order first, then aggregated (SQLite's aggregates take no ORDER BY before
    # 3.44); `correlate` keeps `assets` the outer row's, two levels up
    ordered = names.correlate(Asset).subquery("tag_names")
    return select(func.json_group_array(ordered.c.name)).scalar_subquery()


def _moment(column: ColumnElement[Any], postgresql: bool) -> ColumnElement[Any]:
    # PostgreSQL hands back aware datetimes, in UTC since the read says `SET LOCAL TimeZone`
    # (_pages): the UTCDateTime conversion, a call per cell, is only needed on SQLite
    return type_coerce(column, DateTime(timezone=True)) if postgresql else column


def _ordered(stmt: Select[Any], query: asset_search.AssetQuery, dialect: str) -> Select[Any]:
    """The filtered statement, reading the export's columns in the list's order."""
    sort = asset_search.SORTS[query.sort_key]
    order = [sort.desc(), Asset.id.desc()] if query.descending else [sort.asc(), Asset.id.asc()]
    columns = selected_columns(dialect)
    return stmt.with_only_columns(*columns, maintain_column_froms=True).order_by(*order)


def _pages(
    session: Session, stmt: Select[Any], page_size: int, progress: Callable[[int], None] | None
) -> Iterator[Page]:
    """Every matching row, a page at a time: plain Core rows of one statement, fetched through
    a server-side cursor (`yield_per`); no ORM objects, nothing kept between pages."""
    connection = session.connection()
    postgresql = connection.dialect.name == "postgresql"
    if postgresql:
        # a cursor is planned for its first 10% by default (an index walk in sort order, one
        # random heap read per row); this one is read to the end, so plan for all of it
        connection.execute(text("SET LOCAL cursor_tuple_fraction = 1.0"))
        connection.execute(text("SET LOCAL TimeZone = 'UTC'"))
    result = connection.execute(stmt.execution_options(yield_per=page_size))
    done = 0
    try:
        for partition in result.partitions():
            page: Page = [list(row) for row in partition]
            if not postgresql:
                for values in page:
                    values[TAGS_AT] = json.loads(values[TAGS_AT])
            yield page
            done += len(page)
            if progress is not None:
                progress(done)
    finally:
        result.close()
        session.rollback()  # end the read's transaction (nothing was written in it)


# --- CSV ----------------------------------------------------------------------------------------

def formula_safe(value: str) -> str:
    """A text cell a spreadsheet will not run: a leading `'` before = + - @, tab or CR."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _positions(*kinds: str) -> tuple[int, ...]:
    return tuple(i for i, name in enumerate(COLUMNS) if KINDS[name] in kinds)


# column positions by what the CSV does to them; anything a person typed is formula-safe
CSV_TEXT = _positions("text")  # a choice is one of a closed set of words: nothing to guard
CSV_TAGS = _positions("tags")
CSV_LISTS = _positions("list")  # JSON text of a list
CSV_MAPPINGS = _positions("mapping")  # JSON text of an object
EMPTY_JSON = ("[]", "{}", "null")
CSV_BOOLEANS = _positions("boolean")
CSV_TIMESTAMPS = _positions("timestamp")


def _csv_values(values: list[Any]) -> list[Any]:
    """One row's values as CSV cells, in place (None is an empty cell; numbers as written)."""
    for i in CSV_TEXT:
        v = values[i]
        if v and v.startswith(FORMULA_START):
            values[i] = "'" + v
    for i in CSV_TAGS:
        v = values[i]
        values[i] = formula_safe(LIST_SEPARATOR.join(v)) if v else None
    for i in CSV_LISTS:
        v = values[i]
        values[i] = None if v is None or v in EMPTY_JSON else formula_safe(LIST_SEPARATOR.join(json.loads(v)))
    for i in CSV_MAPPINGS:
        v = values[i]
        values[i] = None if v is None or v in EMPTY_JSON else formula_safe(v)
    for i in CSV_BOOLEANS:
        v = values[i]
        if v is not None:
            values[i] = "true" if v else "false"
    for i in CSV_TIMESTAMPS:
        v = values[i]
        if v is not None:
            values[i] = v.isoformat()
    return values


def write_csv(pages: Iterable[Page]) -> Iterator[bytes]:
    """UTF-8 with a byte-order mark (so Excel reads it as UTF-8), CRLF lines, a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield codecs.BOM_UTF8 + _drain(buffer)
    for page in pages:
        writer.writerows(map(_csv_values, page))
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return data


# --- JSON Lines ---------------------------------------------------------------------------------

def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # the id (a UUID)


# the JSON columns come last in a line: their stored text is appended as it is
JSON_RAW = tuple(i for i, name in enumerate(COLUMNS) if KINDS[name] in JSON_KINDS)
JSON_ENCODED = tuple(i for i in range(len(COLUMNS)) if i not in JSON_RAW)
JSON_KEYS = tuple(COLUMNS[i] for i in JSON_ENCODED)
JSON_TAIL = tuple((f',"{COLUMNS[i]}":', i) for i in JSON_RAW)


def write_json_lines(pages: Iterable[Page]) -> Iterator[bytes]:
    """One `inventory-json` asset object per line, every column present (null when unknown)."""
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default).encode
    for page in pages:
        lines = []
        for values in page:
            head = encode(dict(zip(JSON_KEYS, [values[i] for i in JSON_ENCODED], strict=True)))
            tail = "".join([key + (values[i] or "null") for key, i in JSON_TAIL])
            lines.append(f"{head[:-1]}{tail}}}\n")
        yield "".join(lines).encode()


# --- XLSX ---------------------------------------------------------------------------------------

XLSX_MAX_ROWS = 1_048_576  # a worksheet's limit: past it the rows go on to a new sheet
READ_SIZE = 1 << 16


def write_xlsx(pages: Iterable[Page]) -> Iterator[bytes]:
    """A workbook written in xlsxwriter's constant-memory mode (each row flushed to a temporary
    file as it is written). A zip is only complete when closed, so the bytes follow the last row.
    Text is written as text, never as a formula."""
    with tempfile.TemporaryDirectory(prefix="inventory-export-") as tmp:
        path = os.path.join(tmp, "assets.xlsx")
        workbook = xlsxwriter.Workbook(path, {
            "constant_memory": True, "tmpdir": tmp, "remove_timezone": True,
            "strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False,
        })
        header = workbook.add_format({"bold": True})
        moment = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        cells = [_xlsx_cell(KINDS[name], moment) for name in COLUMNS]
        sheet, row = None, XLSX_MAX_ROWS
        for page in pages:
            for values in page:
                if row == XLSX_MAX_ROWS:
                    sheet = workbook.add_worksheet(f"Assets {len(workbook.worksheets()) + 1}"
                                                   if workbook.worksheets() else "Assets")
                    sheet.freeze_panes(1, 0)
                    sheet.write_row(0, 0, COLUMNS, header)
                    row = 1
                for column, (cell, value) in enumerate(zip(cells, values, strict=True)):
                    if value is not None:
                        cell(sheet, row, column, value)
                row += 1
        if sheet is None:  # no rows: the header alone
            sheet = workbook.add_worksheet("Assets")
            sheet.write_row(0, 0, COLUMNS, header)
        workbook.close()
        with open(path, "rb") as stream:
            while chunk := stream.read(READ_SIZE):
                yield chunk


def _xlsx_cell(kind: str, moment: Any) -> Callable[[Any, int, int, Any], Any]:
    if kind in ("integer", "number"):
        return lambda sheet, r, c, v: sheet.write_number(r, c, v)
    if kind == "boolean":
        return lambda sheet, r, c, v: sheet.write_boolean(r, c, v)
    if kind == "timestamp":
        return lambda sheet, r, c, v: sheet.write_datetime(r, c, v, moment)
    if kind == "tags":
        return lambda sheet, r, c, v: sheet.write_string(r, c, LIST_SEPARATOR.join(v)) if v else None
    if kind == "list":  # JSON text
        return lambda sheet, r, c, v: (
            None if v in EMPTY_JSON else sheet.write_string(r, c, LIST_SEPARATOR.join(json.loads(v)))
        )
    if kind == "mapping":  # JSON text
        return lambda sheet, r, c, v: None if v in EMPTY_JSON else sheet.write_string(r, c, v)
    return lambda sheet, r, c, v: sheet.write_string(r, c, str(v))  # text, choice, id


register(ExportFormat("csv", "CSV", "text/csv", "csv", write_csv))
register(ExportFormat("json", "JSON Lines", "application/x-ndjson", "jsonl", write_json_lines))
register(ExportFormat("xlsx", "XLSX", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                      "xlsx", write_xlsx))
