"""Exports of the asset list (SPEC §5, §7, §8): CSV, JSON Lines and XLSX of exactly a list's
filter and sort, streamed in constant memory at any size.

`start(session, actor, query, fmt)` counts the rows the filter matches, writes one `export`
audit event (format, filter, that count), commits, and hands back an `Export` whose `chunks`
read the rows lazily, in one statement in the list's order, tags included. The page, the API
and `flask export` all come here; the routes only wrap `chunks` in a streamed response.

Two ways to the same file. On PostgreSQL, CSV and JSON Lines are written by PostgreSQL itself:
one `COPY (SELECT <each cell already formatted as the Python writer would>) TO STDOUT`, streamed
through psycopg's `cursor.copy()` (`_copied`), so Python only joins rows into chunks (SPEC §11:
within 3x the same-columns COPY of `make bench`). Elsewhere (SQLite), and for XLSX everywhere,
plain Core rows come through a server-side cursor (`yield_per`, `_pages`) and Python formats
them (`write_csv`, `write_json_lines`, `write_xlsx`). `tests/web/test_exports.py` exports the
same assets both ways on PostgreSQL and compares them. Nothing holds more than a chunk of rows,
so memory stays flat at any size (`make bench` measures it).

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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Dialect,
    Select,
    String,
    Text,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from webapp.models import Asset, AuditAction, Tag, asset_tags
from webapp.models.base import utcnow
from webapp.services import asset_search, audit
from webapp.services.actor import Actor
from webapp.services.errors import ValidationFailed
from webapp.services.export_columns import (  # noqa: F401 (the export's columns, used here and re-exported)
    COLUMNS,
    EMPTY_JSON,
    FIELDS,
    FORMULA_START,
    JSON_KINDS,
    KINDS,
    LIST_SEPARATOR,
    TAGS_AT,
    TIMESTAMPS,
    Page,
    formula_safe,
)
from webapp.services.export_xlsx import write_xlsx

# rows per page: one FETCH from the cursor, one chunk of output
PAGE_SIZE = 2_000
# bytes of COPY output joined into one chunk (about a hundred rows)
CHUNK_BYTES = 1 << 16
# the filter an audit event records: every field of the query but how a page is shown (its
# position, its size, whether its total is counted exactly)
NOT_FILTER = frozenset({"limit", "after", "before", "cursor", "count"})



@dataclass(frozen=True)
class CopyPlan:
    """How PostgreSQL writes a format itself: the SELECT list (each cell as the Python writer
    would write it), the COPY's options, the bytes before the first row, and what ends a line."""

    columns: Callable[[], list[ColumnElement[Any]]]
    options: str
    head: bytes = b""
    line_end: bytes = b"\n"  # PostgreSQL ends each row with "\n"
    wrap_rows: bool = False  # COPY one JSON object per row (row_to_json) instead of the columns


@dataclass(frozen=True)
class ExportFormat:
    name: str
    label: str
    mimetype: str
    extension: str
    write: Callable[[Iterable[Page]], Iterator[bytes]]
    copy: CopyPlan | None = None  # on PostgreSQL, when PostgreSQL can write the format itself


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
    filename = f"assets-{stamp}.{export_format.extension}"
    dialect = session.get_bind().dialect.name
    plan = export_format.copy if dialect == "postgresql" else None
    if plan is not None:
        copied = _copied(session, _ordered(stmt, query, plan.columns()), plan, progress)
        return Export(export_format, count, filename, copied)
    ordered = _ordered(stmt, query, selected_columns(dialect))
    rows = _pages(session, ordered, page_size or PAGE_SIZE, progress)
    return Export(export_format, count, filename, export_format.write(rows))


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


def _ordered(
    stmt: Select[Any], query: asset_search.AssetQuery, columns: list[ColumnElement[Any]]
) -> Select[Any]:
    """The filtered statement, reading `columns` in the list's order."""
    sort = asset_search.SORTS[query.sort_key]
    order = [sort.desc(), Asset.id.desc()] if query.descending else [sort.asc(), Asset.id.asc()]
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

def _positions(*kinds: str) -> tuple[int, ...]:
    return tuple(i for i, name in enumerate(COLUMNS) if KINDS[name] in kinds)


# column positions by what the CSV does to them; anything a person typed is formula-safe
CSV_TEXT = _positions("text")  # a choice is one of a closed set of words: nothing to guard
CSV_TAGS = _positions("tags")
CSV_LISTS = _positions("list")  # JSON text of a list
CSV_MAPPINGS = _positions("mapping")  # JSON text of an object
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


CSV_LINE_END = "\r\n"  # RFC 4180's (docs/decisions.md: CSV line ends)
CSV_HEAD = codecs.BOM_UTF8 + (",".join(COLUMNS) + CSV_LINE_END).encode()


def write_csv(pages: Iterable[Page]) -> Iterator[bytes]:
    """UTF-8 with a byte-order mark (so Excel reads it as UTF-8), CRLF lines, a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=CSV_LINE_END)
    yield CSV_HEAD
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


# --- PostgreSQL writes CSV and JSON Lines itself: one COPY ------------------------------------
#
# Each cell is formatted in SQL exactly as the Python writers above format what `_pages` reads,
# so both ways give the same file (tests/web/test_exports.py compares them): formula-safe text,
# lists joined with "; ", booleans as true/false, timestamps as Python's isoformat() in UTC (the
# read says `SET LOCAL TimeZone`), a whole float with its ".0".

# a leading ' before a cell a spreadsheet would run: FORMULA_START as code points (ascii() of
# the first character copies nothing, unlike left())
GUARDED_STARTS = [literal_column(str(ord(start))) for start in FORMULA_START]
ISO_FORMAT = literal_column("""'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'""")


def _guarded(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """formula_safe() in SQL. `value` is written three times: give a column or an aggregate (a
    scalar subquery's identical aggregates are computed once), not a subquery."""
    return case((func.ascii(value).in_(GUARDED_STARTS), literal_column("''''").concat(value)),
                else_=value)


def _iso(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """datetime.isoformat() of a UTC moment: microseconds only when there are some."""
    return func.replace(func.to_char(column, ISO_FORMAT), literal_column("'.000000+'"),
                        literal_column("'+'"))


def _whole(column: ColumnElement[Any]) -> ColumnElement[bool]:
    # PostgreSQL writes 1.0 as "1", Python's repr() as "1.0" (past 1e15 both write exponents)
    return and_(column == func.trunc(column), func.abs(column) < literal_column("1e15"))


def _joined(separator: str, value: ColumnElement[Any], order: ColumnElement[Any]) -> Any:
    return func.string_agg(value, aggregate_order_by(literal_column(f"'{separator}'"), order))


def _csv_tags() -> ColumnElement[Any]:
    names = (
        select(_guarded(_joined(LIST_SEPARATOR, Tag.name, Tag.name)))
        .join(asset_tags, asset_tags.c.tag_id == Tag.id)
        .where(asset_tags.c.asset_id == Asset.id)
    )
    return names.scalar_subquery()


def _csv_aliases(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A JSON list of text joined like tags; nothing for an empty list or anything else."""
    items = (func.jsonb_array_elements_text(column)
             .table_valued("value", with_ordinality="n").render_derived())
    joined = select(_guarded(_joined(LIST_SEPARATOR, items.c.value, items.c.n))).select_from(items)
    listed = and_(func.jsonb_typeof(column) == literal_column("'array'"),
                  column != literal_column("'[]'::jsonb"))  # the subquery only when there is one
    return case((listed, joined.scalar_subquery()))


def _csv_mapping(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """The stored JSON text, nothing for an empty or null value (EMPTY_JSON); only a number can
    start like a formula."""
    stored = cast(column, Text())
    return case(
        (column.in_([literal_column(f"'{e}'::jsonb") for e in EMPTY_JSON]), None),
        (func.jsonb_typeof(column) == literal_column("'number'"), _guarded(stored)),
        else_=stored,
    )


def _stored(name: str) -> ColumnElement[Any]:
    """The asset's column behind an export column (`metadata` is the attribute `metadata_`)."""
    field = next((f for f in FIELDS if f.name == name), None)
    return getattr(Asset, field.attribute or name if field else name, None)  # type: ignore[no-any-return]


def csv_copy_columns() -> list[ColumnElement[Any]]:
    """The SELECT list whose `COPY … (FORMAT csv)` is write_csv's rows, in COLUMNS order."""
    columns: list[ColumnElement[Any]] = []
    for name in COLUMNS:
        kind = KINDS[name]
        column = _stored(name)
        if name == "has_connection_string":
            column = cast(Asset.connection_string_encrypted.is_not(None), Text())
        elif kind == "text":
            column = _guarded(column)
        elif kind == "tags":
            column = _csv_tags()
        elif kind == "list":
            column = _csv_aliases(column)
        elif kind == "mapping":
            column = _csv_mapping(column)
        elif kind == "boolean":
            column = cast(column, Text())  # "true", "false" (COPY alone writes t, f)
        elif kind == "timestamp":
            column = _iso(column)
        elif kind == "number":
            shown = cast(column, Text())
            column = case((_whole(column), shown.concat(literal_column("'.0'"))), else_=shown)
        columns.append(column.label(name))
    return columns


def json_copy_columns() -> list[ColumnElement[Any]]:
    """The SELECT list whose row_to_json() is write_json_lines's line: JSON_KEYS, then the
    stored JSON columns as they are."""
    columns: list[ColumnElement[Any]] = []
    for name in (*JSON_KEYS, *(COLUMNS[i] for i in JSON_RAW)):
        kind = KINDS[name]
        column = _stored(name)
        if name == "has_connection_string":
            column = Asset.connection_string_encrypted.is_not(None)
        elif kind == "tags":
            column = _tag_names(postgresql=True)
        elif kind == "timestamp":
            column = _iso(column)
        elif kind == "number":  # a JSON number as Python's json writes it
            shown = cast(column, Text())
            column = case((_whole(column), cast(shown.concat(literal_column("'.0'")), JSON())),
                          else_=func.to_json(column))
        columns.append(column.label(name))
    return columns


CSV_COPY = CopyPlan(csv_copy_columns, "FORMAT csv", head=CSV_HEAD,
                    line_end=CSV_LINE_END.encode())
# JSON text never holds a raw control character, so with these two as quote and delimiter the
# CSV format adds nothing to the one column (the text format would double each backslash)
JSON_COPY = CopyPlan(json_copy_columns, "FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02'",
                     wrap_rows=True)


def _copied(
    session: Session, stmt: Select[Any], plan: CopyPlan, progress: Callable[[int], None] | None
) -> Iterator[bytes]:
    """The rows of `stmt` as PostgreSQL's COPY writes them, joined into chunks of about
    CHUNK_BYTES. PostgreSQL sends one message per row, ended by "\\n" (the protocol's
    CopyData, "always one per row"), so a row's line end can be replaced and rows counted."""
    if plan.wrap_rows:  # a plain SELECT over a subquery keeps the subquery's order
        rows = stmt.subquery("r")
        stmt = select(func.row_to_json(rows.table_valued()))
    # a connection of its own: while a COPY streams, its connection can do nothing else, so the
    # session's stays free for whatever runs before the last chunk is read (a test's checks)
    connection = session.get_bind().connect()
    connection.execute(text("SET LOCAL TimeZone = 'UTC'"))
    sql, params = _driver_sql(stmt, connection.dialect)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    line_end = plan.line_end
    done = 0
    try:
        if plan.head:
            yield plan.head
        with cursor.copy(f"COPY ({sql}) TO STDOUT WITH ({plan.options})", params) as copy:
            lines: list[Any] = []
            size = 0
            for row in copy:
                lines.append(row if line_end == b"\n" else row[:-1])
                size += len(row)
                if size >= CHUNK_BYTES:
                    yield _lines(lines, line_end)
                    done += len(lines)
                    lines, size = [], 0
                    if progress is not None:
                        progress(done)
            if lines:
                yield _lines(lines, line_end)
                if progress is not None:
                    progress(done + len(lines))
    finally:
        cursor.close()
        connection.rollback()  # end the read's transaction (nothing was written in it)
        connection.close()
        session.rollback()


def _lines(rows: list[Any], line_end: bytes) -> bytes:
    if line_end == b"\n":  # each row still ends with its own
        return b"".join(rows)
    return line_end.join(rows) + line_end


def _driver_sql(stmt: Select[Any], dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """The statement as psycopg takes it (`%(name)s` placeholders, which psycopg binds on the
    client for a COPY) and its parameters as SQLAlchemy would send them (expanded IN lists,
    each value through its type's bind processor: an enum member becomes its value)."""
    compiled = stmt.compile(dialect=dialect)
    state = compiled.construct_expanded_state()
    params = {}
    for key, value in state.parameters.items():
        process = state.processors.get(key)
        if process is None and key in compiled.binds:
            process = compiled.binds[key].type.dialect_impl(dialect).bind_processor(dialect)
        params[key] = process(value) if process is not None else value
    return state.statement, params


register(ExportFormat("csv", "CSV", "text/csv", "csv", write_csv, copy=CSV_COPY))
register(ExportFormat("json", "JSON Lines", "application/x-ndjson", "jsonl", write_json_lines,
                      copy=JSON_COPY))
register(ExportFormat("xlsx", "XLSX", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                      "xlsx", write_xlsx))
