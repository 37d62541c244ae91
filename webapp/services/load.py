"""`flask load`: a dump (`services/dump.py`) into an empty database, as one transaction.

Before anything is written: the header must be a dump of a format this code reads, at the
database's own schema revision; the database must be empty (no row in any table but
`alembic_version`); and the keys the dump's secrets need (by fingerprint) must be configured
here. Then every section is written in the file's order (parents first): one COPY per table on
PostgreSQL, batched INSERTs elsewhere. Each row line is checked as it is read (JSON, number of
values, each value against its column's codec), each section against its end line (row count
and SHA-256 of its lines) and the header's count, and the audit events' hash chain is walked
as they stream past: it must end at the header's anchor, and so must the anchor row loaded into
`settings`. Integer keys' sequences are moved past the loaded ids. Only then is one `load`
event appended to the chain (under a change set of kind `load`), and everything commits at
once; any problem rolls all of it back and names the line or the table. A killed `load`
commits nothing, and can simply be run again.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import json
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

import psycopg
from sqlalchemy import Integer, func, insert, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from webapp.models import AuditAction, ChangeSet, ChangeSetKind, ChangeSetStatus
from webapp.models.base import utcnow
from webapp.services import audit, bulk, cached_counts, database, dump, keyring
from webapp.services.actor import Actor

Progress = Callable[[int, int], None]
SQLITE_BATCH = 2_000
AUDIT_TABLE = "audit_events"


class LoadRefused(RuntimeError):
    """Nothing was written: the message says why (naming the line, the table or the revisions)."""


@dataclass
class LoadResult:
    tables: dict[str, int]
    change_set_number: int | None
    event_id: int
    anchor: audit.Anchor | None  # the loaded chain's anchor (the dump's)
    created_at: str

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


class _Lines:
    """The file's lines with their numbers; a broken gzip stream or cut line is a refusal."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.number = 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                line = self.stream.readline()
            except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
                raise LoadRefused(f"line {self.number + 1}: the file is damaged or truncated ({exc}); "
                                  "nothing was written.") from None
            if not line:
                return
            self.number += 1
            if not line.endswith(b"\n"):
                raise LoadRefused(f"line {self.number}: the line is cut short (the file is truncated); "
                                  "nothing was written.")
            yield line

    def parse(self, line: bytes) -> Any:
        try:
            return json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            raise LoadRefused(f"line {self.number}: not valid JSON ({exc}); the file is corrupted. "
                              "Nothing was written.") from None


def open_dump(path: Path, stack: contextlib.ExitStack) -> IO[bytes]:
    """The dump's bytes, closed with `stack`: gunzipped when the file is gzip (by its first
    bytes, not its name; the file may be a pipe)."""
    try:
        raw = stack.enter_context(open(path, "rb"))  # noqa: SIM115 (closed by the stack)
    except OSError as exc:
        raise LoadRefused(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))  # type: ignore[return-value]
    return raw


def read_header(lines: _Lines, iterator: Iterator[bytes]) -> dict[str, Any]:
    first = next(iterator, None)
    if first is None:
        raise LoadRefused("The file is empty: it is not a dump.")
    header = lines.parse(first)
    if not isinstance(header, dict) or header.get("format") != dump.FORMAT:
        raise LoadRefused("line 1: this is not an inventory dump (no dump header).")
    version = header.get("version")
    if not isinstance(version, int):
        raise LoadRefused("line 1: the header has no format version.")
    if version > dump.FORMAT_VERSION:
        raise LoadRefused(f"The dump has format version {version}, newer than this version of the app reads "
                          f"({dump.FORMAT_VERSION}); load it with the version that wrote it, or a later one.")
    if not isinstance(header.get("tables"), dict) or not all(
            isinstance(n, int) and n >= 0 for n in header["tables"].values()):
        raise LoadRefused("line 1: the header has no table counts.")
    return header


def _check_target(session: Session, header: dict[str, Any]) -> None:
    connection = session.connection()
    revision = dump.schema_revision(connection)
    wanted = header.get("schema_revision")
    if revision is None:
        raise LoadRefused(f"The database has no schema yet: run `flask --app webapp db upgrade` first "
                          f"(the dump is at revision {wanted}).")
    if revision != wanted:
        raise LoadRefused(f"The dump is at schema revision {wanted}, the database at {revision}: both must be "
                          "the same. Upgrade the database (`flask db upgrade`) or load with the app version "
                          "that wrote the dump.")
    tables = [t for t in inspect(connection).get_table_names() if t not in dump.SKIPPED_TABLES]
    busy = [t for t in sorted(tables)
            if connection.execute(text(f'SELECT 1 FROM "{t}" LIMIT 1')).first() is not None]
    if busy:
        raise LoadRefused("The database is not empty (rows in " + ", ".join(busy) + "); load only into a "
                          "freshly migrated database (`flask reset --yes` in development, or a new database).")


def _check_keys(header: dict[str, Any]) -> list[keyring.Key]:
    salt_text = header.get("passphrase_salt")
    salt = base64.b64decode(salt_text) if isinstance(salt_text, str) else None
    here = keyring.configured_keys(salt)
    have = {k.fingerprint for k in here}
    needed = [k for k in header.get("keys") or [] if isinstance(k, dict)]
    missing = [k for k in needed if k.get("fingerprint") not in have]
    if missing:
        described = ", ".join(f"{k.get('fingerprint')} ({k.get('secrets', '?')} secret(s)"
                              + (f", {k['configured_as']} where the dump was made" if k.get("configured_as") else "")
                              + ")" for k in missing)
        mine = ", ".join(sorted(have)) or "none"
        raise LoadRefused(f"The dump's secrets are encrypted with key(s) not configured here: {described}. "
                          f"Keys configured here: {mine}. Add the key(s) to INVENTORY_ENCRYPTION_KEYS (or set "
                          "the same INVENTORY_ENCRYPTION_PASSPHRASE) and run load again; nothing was written.")
    return here


class _Chain:
    """The audit events' hash chain, walked as the rows stream past."""

    def __init__(self) -> None:
        self.prev = audit.GENESIS_HASH
        self.last: audit.Anchor | None = None

    def check(self, row: dict[str, Any], line: int) -> None:
        event = SimpleNamespace(**row)
        if event.prev_hash != self.prev:
            raise LoadRefused(f"line {line}: audit_events: event {event.id} does not link to the previous "
                              "event (prev_hash); the audit chain is broken. Nothing was written.")
        if audit.compute_hash(event) != event.hash:  # type: ignore[arg-type]
            raise LoadRefused(f"line {line}: audit_events: event {event.id}'s hash does not match its content; "
                              "the audit chain is broken. Nothing was written.")
        self.prev = event.hash
        self.last = audit.Anchor(event.id, event.hash)


class _Writer:
    """Rows into one table: a COPY on PostgreSQL, batched INSERTs elsewhere."""

    def __init__(self, session: Session, section: dump.Section) -> None:
        self.session = session
        self.section = section
        self.table = section.table
        self.postgresql = bulk.is_postgresql(session)
        cached_counts.wrote(session, self.table.name)  # a COPY: the session's events do not see it
        self.json_at = [i for i, c in enumerate(section.codecs) if c.kind == "json"]
        self.batch: list[dict[str, Any]] = []
        self.stack = contextlib.ExitStack()
        self.copy: Any = None
        if self.postgresql:
            raw = session.connection().connection.driver_connection
            names = ", ".join(f'"{c}"' for c in section.columns)
            cursor = self.stack.enter_context(raw.cursor())
            self.copy = self.stack.enter_context(cursor.copy(f'COPY "{self.table.name}" ({names}) FROM STDIN'))

    def add(self, values: list[Any]) -> None:
        if self.postgresql:
            for i in self.json_at:
                if values[i] is not None:
                    values[i] = json.dumps(values[i], ensure_ascii=False)
            self.copy.write_row(values)
            return
        self.batch.append(dict(zip(self.section.columns, values, strict=True)))
        if len(self.batch) >= SQLITE_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.batch and not self.postgresql:
            self.session.execute(insert(self.table), self.batch)
            self.batch = []

    def close(self) -> None:
        """The section is complete: end the COPY (PostgreSQL checks its rows here)."""
        self.flush()
        self.stack.close()

    def abort(self) -> None:
        """The load is refused: end the COPY with an error (the transaction is rolled back)."""
        with contextlib.suppress(Exception):  # the COPY's own error; the rollback follows
            self.stack.__exit__(LoadRefused, LoadRefused("aborted"), None)


def _set_sequences(session: Session) -> None:
    """Move each integer key's sequence past the loaded ids (PostgreSQL)."""
    if not bulk.is_postgresql(session):
        return
    for section in dump.sections():
        keys = list(section.table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer):
            continue
        name, column = section.table.name, keys[0].name
        sequence = session.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                  {"t": f'"{name}"', "c": column})
        if sequence:
            session.execute(text(f'SELECT setval(:s, COALESCE((SELECT max("{column}") FROM "{name}"), 1), '
                                 f'(SELECT max("{column}") FROM "{name}") IS NOT NULL)'), {"s": sequence})


def load(session: Session, path: Path | str, actor: Actor, *, progress: Progress | None = None) -> LoadResult:
    """Load the dump at `path` into this (empty) database; LoadRefused, with nothing written, if
    anything is wrong."""
    path = Path(path)
    with contextlib.ExitStack() as stack:
        lines = _Lines(open_dump(path, stack))
        iterator = iter(lines)
        try:
            header = read_header(lines, iterator)
            _check_target(session, header)
            _check_keys(header)
            result = _load_sections(session, lines, iterator, header, progress)
            result.event_id, result.change_set_number = _record(session, actor, path, header, result)
            database.analyze_changed(session, result.tables)  # every table is new: the planner needs statistics
            session.commit()
        except (DBAPIError, psycopg.Error) as exc:
            _rollback(session)
            raise LoadRefused(f"The database failed during the load ({_first_line(exc)}); nothing was "
                              "written.") from None
        except BaseException:
            _rollback(session)
            raise
    return result


def _rollback(session: Session) -> None:
    with contextlib.suppress(DBAPIError, psycopg.Error):  # a dead connection has nothing to undo
        session.rollback()


def _load_sections(session: Session, lines: _Lines, iterator: Iterator[bytes], header: dict[str, Any],
                   progress: Progress | None) -> LoadResult:
    known = {s.name: s for s in dump.sections()}
    expected: dict[str, int] = header["tables"]
    unknown = [t for t in expected if t not in known]
    if unknown:
        raise LoadRefused(f"line 1: the dump has table(s) this database does not: {', '.join(unknown)}.")
    absent = [t for t in known if t not in expected]
    if absent:
        raise LoadRefused(f"line 1: the dump lacks table(s) of this database: {', '.join(absent)}.")
    total, done = sum(expected.values()), 0
    loaded: dict[str, int] = {}
    chain = _Chain()
    for line in iterator:
        control = lines.parse(line)
        if isinstance(control, dict) and control.get("end_of_dump") is True:
            missing = [t for t in expected if t not in loaded]
            if missing:
                raise LoadRefused(f"line {lines.number}: the dump ends without table(s) {', '.join(missing)}.")
            break
        if not isinstance(control, dict) or control.get("table") not in known:
            raise LoadRefused(f"line {lines.number}: expected the start of a table section; the file is "
                              "corrupted. Nothing was written.")
        section = known[control["table"]]
        if section.name in loaded:
            raise LoadRefused(f"line {lines.number}: table {section.name} appears twice.")
        if control.get("columns") != section.columns:
            raise LoadRefused(f"line {lines.number}: {section.name}'s columns in the dump ({control.get('columns')}) "
                              f"are not this database's ({section.columns}).")
        try:
            rows, done = _load_section(session, lines, iterator, section, chain, done, total, progress)
        except (DBAPIError, psycopg.Error) as exc:
            raise LoadRefused(f"{section.name} (by line {lines.number}): the database refused the rows: "
                              f"{_first_line(exc)}. Nothing was written.") from None
        if rows != expected[section.name]:
            raise LoadRefused(f"{section.name}: the header counts {expected[section.name]} rows but the file holds "
                              f"{rows}; nothing was written.")
        loaded[section.name] = rows
    else:
        where = f"after table {list(loaded)[-1]}" if loaded else "before the first table"
        raise LoadRefused(f"line {lines.number}: the file ends {where}, without its last line: it is truncated. "
                          "Nothing was written.")
    _set_sequences(session)
    _check_anchor(session, header, chain)
    return LoadResult(loaded, None, 0, chain.last, str(header.get("created_at")))


def _load_section(session: Session, lines: _Lines, iterator: Iterator[bytes], section: dump.Section,
                  chain: _Chain, done: int, total: int, progress: Progress | None) -> tuple[int, int]:
    writer = _Writer(session, section)
    digest = hashlib.sha256()
    decoders = [(i, name, codec.decode) for i, (name, codec) in enumerate(zip(section.columns, section.codecs,
                                                                             strict=True))]
    width = len(section.columns)
    is_audit = section.name == AUDIT_TABLE
    rows = 0
    try:
        for line in iterator:
            if line[:1] != b"[":
                end = lines.parse(line)
                if not isinstance(end, dict) or end.get("end") != section.name:
                    raise LoadRefused(f"line {lines.number}: expected a row of {section.name} or the end of its "
                                      "section; the file is corrupted. Nothing was written.")
                if end.get("rows") != rows or end.get("sha256") != digest.hexdigest():
                    raise LoadRefused(f"{section.name}: the section's rows do not match its checksum or count "
                                      f"(line {lines.number}); the file is corrupted. Nothing was written.")
                writer.close()
                if progress is not None:
                    progress(done, total)
                return rows, done
            digest.update(line)
            values = lines.parse(line)
            if not isinstance(values, list) or len(values) != width:
                raise LoadRefused(f"line {lines.number}: a row of {section.name} needs {width} values; the file is "
                                  "corrupted. Nothing was written.")
            for i, name, decode in decoders:
                value = values[i]
                if value is not None:
                    try:
                        values[i] = decode(value)
                    except (ValueError, TypeError) as exc:
                        raise LoadRefused(f"line {lines.number}: {section.name}.{name}: {exc} (got {value!r:.80}); "
                                          "the file is corrupted. Nothing was written.") from None
            if is_audit:
                chain.check(dict(zip(section.columns, values, strict=True)), lines.number)
            writer.add(values)
            rows += 1
            done += 1
            if progress is not None and done % 5000 == 0:
                progress(done, total)
    except BaseException:
        writer.abort()
        raise
    writer.abort()
    raise LoadRefused(f"line {lines.number}: the file ends inside table {section.name}: it is truncated. "
                      "Nothing was written.")


def _first_line(exc: Exception) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def _check_anchor(session: Session, header: dict[str, Any], chain: _Chain) -> None:
    """The loaded chain ends at the header's anchor, and the anchor row loaded says so too."""
    given = header.get("audit_anchor")
    expected = audit.Anchor(given["id"], given["hash"]) if isinstance(given, dict) else None
    if chain.last != expected:
        raise LoadRefused(f"audit_events: the chain ends at {chain.last or 'nothing'} but the header's anchor is "
                          f"{expected or 'none'}; events are missing or were added. Nothing was written.")
    stored = audit.anchor(session)
    if stored != expected:
        raise LoadRefused(f"settings: the anchor row ({stored or 'none'}) is not the header's anchor "
                          f"({expected or 'none'}). Nothing was written.")


def _record(session: Session, actor: Actor, path: Path, header: dict[str, Any],
            result: LoadResult) -> tuple[int, int | None]:
    """One `load` event after the loaded chain, under a change set of kind `load`."""
    now = utcnow()
    number = session.scalar(select(func.coalesce(func.max(ChangeSet.number), 0) + 1))
    change_set = ChangeSet(
        id=uuid.uuid4(), number=number, kind=ChangeSetKind.load, status=ChangeSetStatus.succeeded,
        actor_id=actor.user_id, actor_label=actor.label[:300], ip=actor.ip, user_agent=actor.user_agent,
        request_id=actor.request_id, selection={"file": path.name},
        params={"format_version": header.get("version"), "schema_revision": header.get("schema_revision"),
                "dump_created_at": header.get("created_at"), "source_dialect": header.get("source_dialect"),
                "tables": result.tables},
        preview={}, matched=result.rows, changed=result.rows, total=result.rows, processed=result.rows,
        reported=[], runner="inline", created_at=now, started_at=now, finished_at=now,
    )
    session.add(change_set)
    session.flush()
    event = audit.record(
        session, actor, AuditAction.load, "system", None,
        {"rows": [None, result.rows], "tables": [None, len(result.tables)]},
        message=(f"loaded {result.rows:,} rows of {len(result.tables)} tables from {path.name} "
                 f"(dump of {header.get('created_at')}; its audit anchor {result.anchor or 'none'})"),
        change_set_id=change_set.id,
    )
    return event.id, number
