"""`flask dump`: every table as portable JSON Lines, from one consistent snapshot (SPEC §8).

The file (gzip when its name ends in `.gz`):

    {"format": "asset-inventory-dump", "version": 1, "schema_revision": …, "created_at": …,
     "tables": {table: rows, …}, "audit_anchor": {"id": …, "hash": …}, "keys": […], …}
    {"table": "users", "columns": ["id", "email", …]}
    ["0c6e…", "ada@example.com", …]                      one JSON array per row
    {"end": "users", "rows": 12, "sha256": "…"}            the section's row lines, hashed
    …                                                      every table, parents first
    {"end_of_dump": true, "tables": 31}

Tables come from the models' metadata in dependency order (`Base.metadata.sorted_tables`), so a
table added later is dumped without being named here; only `alembic_version` is left out (the
header carries the revision instead). Audit events are in id order (the load checks their chain
as they stream past); on PostgreSQL every other table comes in the order the server reads it,
because sorting 7,600,000 policy results or 6,500,000 identifier keys cost more than the dump
itself (SQLite's rows come in primary-key order, which costs nothing there). So two dumps of the
same data hold the same lines per table, not always in the same order. Generated columns are left out (the database computes them again). Values go through the
column types' codecs (`dump_codec`). Secrets are written as stored: encrypted; the header names the keys they
need by fingerprint (`keyring`).

On PostgreSQL the dump reads one REPEATABLE READ, read-only snapshot, and each table is one
`COPY (SELECT json_build_array(…)::text …) TO STDOUT`: the server formats the
rows, the client only joins bytes, and memory stays flat whatever the size. On SQLite one read transaction holds the
snapshot and rows stream from its cursor, formatted by the same codecs in Python.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg
from sqlalchemy import String, Table, func, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from webapp.models import Base
from webapp.models.base import utcnow
from webapp.services import audit, keyring
from webapp.services.dump_codec import Codec, codec_for, encode_row, iso_datetime

FORMAT = "asset-inventory-dump"
FORMAT_VERSION = 1
SKIPPED_TABLES = frozenset({"alembic_version"})
ORDERED_TABLES = frozenset({"audit_events"})  # in key order on PostgreSQL too (the chain's order)
FLUSH_BYTES = 1 << 20
GZIP_LEVEL = 1  # fast: a dump of millions of rows is bound by compression above this
JSON_BUILD_ARRAY_MAX = 100  # PostgreSQL's limit on a function's arguments
COPY_ROWS = 5_000  # rows joined into one write (a few MB of text at most)

Progress = Callable[[int, int], None]


class DumpFailed(RuntimeError):
    """The dump could not be written (a clear message, for the command line)."""


@dataclass(frozen=True)
class Section:
    """A table as the dump writes it: its columns (metadata order), their codecs, its key."""

    table: Table
    columns: list[str]
    codecs: list[Codec]

    @property
    def name(self) -> str:
        return self.table.name


def sections() -> list[Section]:
    """Every table of the metadata, parents before children (alembic_version left out)."""
    found = []
    for table in Base.metadata.sorted_tables:
        if table.name in SKIPPED_TABLES:
            continue
        # generated columns are the database's to compute (and COPY refuses them)
        columns = [c for c in table.columns if c.computed is None]
        found.append(Section(table, [c.name for c in columns], [codec_for(c) for c in columns]))
    return found


def key_order(table: Table) -> list[Any]:
    """The order rows are dumped in: the primary key's columns, text ones last (so an index on
    the others leads and PostgreSQL sorts only within their groups)."""
    columns = list(table.primary_key.columns)
    return [c for c in columns if not isinstance(c.type, String)] + [c for c in columns if isinstance(c.type, String)]


def order_by_sql(table: Table) -> str:
    """`key_order` as SQL: text by its bytes (`COLLATE "C"`), as SQLite compares it."""
    return ", ".join(f'"{c.name}"' + (' COLLATE "C"' if isinstance(c.type, String) else "") for c in key_order(table))


def schema_revision(connection: Connection) -> str | None:
    """The database's Alembic revision (None when it has never been migrated)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    revisions = [r for (r,) in connection.execute(text("SELECT version_num FROM alembic_version"))]
    return ",".join(sorted(revisions)) or None


@dataclass
class DumpResult:
    path: Path | None
    tables: dict[str, int]
    bytes_written: int
    anchor: audit.Anchor | None
    keys: list[dict[str, Any]]
    undecryptable: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection reading one consistent, read-only snapshot until the block ends."""
    with engine.connect() as base:
        if engine.dialect.name == "postgresql":
            connection = base.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with connection.begin():
                connection.execute(text("SET LOCAL TimeZone = 'UTC'"))
                connection.execute(text("SET LOCAL extra_float_digits = 1"))
                yield connection
            return
        base.exec_driver_sql("BEGIN")  # SQLite: one read transaction for every SELECT
        try:
            yield base
        finally:
            base.rollback()


def _header(connection: Connection, counts: dict[str, int], secrets: keyring.SecretCheck,
            salt: bytes | None, keys: list[keyring.Key]) -> dict[str, Any]:
    anchor = audit.anchor(_Reader(connection))  # type: ignore[arg-type]
    sources = {k.fingerprint: k.source for k in keys}
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "schema_revision": schema_revision(connection),
        "created_at": iso_datetime(utcnow()),
        "source_dialect": connection.dialect.name,
        "tables": counts,
        "audit_anchor": {"id": anchor.id, "hash": anchor.hash} if anchor else None,
        "keys": [{"fingerprint": fp, "secrets": n, "configured_as": sources.get(fp)}
                 for fp, n in sorted(secrets.used.items())],
        "undecryptable_secrets": len(secrets.undecryptable),
        "passphrase_salt": base64.b64encode(salt).decode() if salt is not None else None,
    }


class _Reader:
    """Just enough of a Session for `audit.anchor` on a plain connection."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def scalar(self, statement: Any) -> Any:
        return self.connection.scalar(statement)


class _Out:
    """Buffered writes with a running count of bytes."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.buffer = bytearray()
        self.written = 0

    def write(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.raw.write(self.buffer)
            self.written += len(self.buffer)
            self.buffer = bytearray()


def _line(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, ensure_ascii=False) + "\n").encode()


def dump_to(engine: Engine, raw: IO[bytes], *, progress: Progress | None = None) -> DumpResult:
    """Write the whole database to `raw` (binary, already open) from one snapshot."""
    parts = sections()
    with snapshot(engine) as connection:
        names = set(inspect(connection).get_table_names())
        missing = [s.name for s in parts if s.name not in names]
        if missing:
            raise DumpFailed(f"The database lacks table(s) {', '.join(missing)}: run `flask --app webapp db "
                             "upgrade` first.")
        counts = {s.name: connection.scalar(select(func.count()).select_from(s.table)) or 0 for s in parts}
        salt = keyring.stored_salt(connection)
        keys = keyring.configured_keys(salt)
        secrets = keyring.check_secrets(connection, keys)
        header = _header(connection, counts, secrets, salt, keys)
        out = _Out(raw)
        out.write(_line(header))
        total, done = sum(counts.values()), 0
        for section in parts:
            out.write(_line({"table": section.name, "columns": section.columns}))
            digest = hashlib.sha256()
            write = _server_rows if connection.dialect.name == "postgresql" else _select_rows
            rows = 0
            for chunk, n in write(connection, section):
                digest.update(chunk)
                out.write(chunk)
                rows += n
                done += n
                if progress is not None:
                    progress(done, total)
            if rows != counts[section.name]:  # the snapshot makes this impossible; say so if not
                raise DumpFailed(f"{section.name}: counted {counts[section.name]} rows but read {rows}.")
            out.write(_line({"end": section.name, "rows": rows, "sha256": digest.hexdigest()}))
        out.write(_line({"end_of_dump": True, "tables": len(parts)}))
        out.flush()
        anchor = header["audit_anchor"]
        return DumpResult(None, counts, out.written,
                          audit.Anchor(anchor["id"], anchor["hash"]) if anchor else None,
                          header["keys"], secrets.undecryptable)


def _server_rows(connection: Connection, section: Section) -> Iterator[tuple[bytes, int]]:
    """PostgreSQL formats each row (`json_build_array`) and hands the lines over with `COPY …
    TO STDOUT` (audit events in id order, the rest as stored): no Python object per row, only
    bytes joined COPY_ROWS at a time.

    CSV format with a quote and a delimiter no JSON text contains (control characters are
    escaped inside JSON strings, and jsonb's text has no raw newline) writes each line exactly
    as the server formatted it, where the text format would double every backslash."""
    expressions = [codec.sql(f'"{name}"') for codec, name in zip(section.codecs, section.columns, strict=True)]
    if len(expressions) > JSON_BUILD_ARRAY_MAX:
        raise DumpFailed(f"{section.name} has more than {JSON_BUILD_ARRAY_MAX} columns; the dump cannot "
                         "format it on the server.")
    order = f" ORDER BY {order_by_sql(section.table)}" if section.name in ORDERED_TABLES else ""
    statement = (f"COPY (SELECT json_build_array({', '.join(expressions)})::text FROM \"{section.name}\"{order}) "
                 "TO STDOUT "
                 "WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')")
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        blocks: list[Any] = []
        for block in copy:  # a row per block (libpq's PQgetCopyData); counted by its newlines
            blocks.append(block)
            if len(blocks) == COPY_ROWS:
                chunk = b"".join(blocks)
                yield chunk, chunk.count(b"\n")
                blocks = []
        if blocks:
            chunk = b"".join(blocks)
            yield chunk, chunk.count(b"\n")


def _select_rows(connection: Connection, section: Section) -> Iterator[tuple[bytes, int]]:
    """Elsewhere: a streamed SELECT in key order, each row formatted by the codecs."""
    table = section.table
    statement = select(*[table.c[name] for name in section.columns]).order_by(*key_order(table))
    lines: list[str] = []
    for row in connection.execution_options(yield_per=5000).execute(statement):
        lines.append(encode_row(section.codecs, row))
        if len(lines) == 5000:
            yield ("\n".join(lines) + "\n").encode(), len(lines)
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode(), len(lines)


def write_dump(engine: Engine, path: Path | str, *, progress: Progress | None = None,
               overwrite: bool = False) -> DumpResult:
    """Dump into `path`: written beside it as `<name>.partial` and renamed when complete, so a
    failure (disk full, a dropped connection) leaves no file that looks whole."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise DumpFailed(f"{target} already exists; choose another name or remove it.")
    if not target.parent.is_dir():
        raise DumpFailed(f"{target.parent} is not a directory.")
    partial = target.with_name(target.name + ".partial")
    try:
        partial.unlink(missing_ok=True)
        raw = open(partial, "xb")  # noqa: SIM115
    except OSError as exc:
        raise DumpFailed(f"Cannot write {partial}: {exc.strerror or exc}.") from None
    try:
        with raw:
            if target.name.endswith(".gz"):
                with gzip.GzipFile(filename=target.name[:-3], mode="wb", fileobj=raw,
                                   compresslevel=GZIP_LEVEL, mtime=0) as zipped:
                    result = dump_to(engine, zipped, progress=progress)  # type: ignore[arg-type]
            else:
                result = dump_to(engine, raw, progress=progress)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise DumpFailed(f"Cannot write {target}: {exc.strerror or exc}; nothing was kept.") from None
    except (DBAPIError, psycopg.Error) as exc:  # the connection dropped, a statement was refused
        partial.unlink(missing_ok=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise DumpFailed(f"The database failed during the dump ({reason}); nothing was kept.") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    result.path = target
    result.bytes_written = target.stat().st_size
    return result

