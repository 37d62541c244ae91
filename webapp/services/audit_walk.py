"""The audit chain's walk for `audit verify`: raw rows, canonical JSON, SHA-256 (SPEC §11).

Building an ORM object per event cost 64 µs; ten million events took a quarter of an hour.
Here no event becomes an object: on PostgreSQL the events arrive as COPY text, each event's
canonical JSON written from its bytes by `audit_copy` (psycopg's rows and a dict per event
for orjson cost 7 of the 8 µs an event took); elsewhere (SQLite) they stream as plain tuples
of a Core select and orjson writes each payload with sorted keys. A large log is split by id
range over the machine's cores, each part checked on its own (the first in this process, the
others in spawned workers) and the parts' ends linked afterwards.

The fast ways only save time: an event whose fast digest does not match is read again as
typed values and hashed by orjson, then by the app's own encoder (`digest`), before it is called
broken, so the answer is always the standard encoder's. (orjson writes the same bytes as `json`
with sorted keys and no spaces for everything an event holds except small floats' exponents,
`1e-7` for `1e-07`, and integers past 64 bits, which it refuses.)
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import orjson
from sqlalchemy import String, cast, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from webapp.models import AuditEvent
from webapp.services import audit_copy
from webapp.services.text import json_loads

BATCH = 10_000  # rows per fetch (SQLite)
PARALLEL_MIN = 400_000  # fewer events than this are walked in one process (forking costs more)
_SORTED = orjson.OPT_SORT_KEYS

Digest = Callable[[dict[str, Any]], str]  # a module-level function: it travels to the workers by name


@dataclass
class Part:
    """What one stretch of the chain (ids first..last) says about itself."""

    checked: int = 0
    first_id: int | None = None
    first_prev: str | None = None  # the first event's prev_hash: must be the previous part's end
    last_id: int | None = None
    last_hash: str | None = None
    broken_id: int | None = None
    reason: str | None = None
    watched: dict[int, str] = field(default_factory=dict)  # of the ids asked about, those found: their hash


def _columns() -> list[Any]:
    c = AuditEvent.__table__.c
    return [c.id, c.occurred_at, cast(c.actor_id, String), c.actor_label, c.ip, c.user_agent, c.request_id,
            c.action, c.entity_type, c.entity_id, c.changes, c.message, c.prev_hash, c.hash,
            cast(c.change_set_id, String)]


_TYPED = ("SELECT id, occurred_at, actor_id::text, actor_label, ip, user_agent, request_id, action, entity_type, "
          "entity_id, changes::text, message, prev_hash, hash, change_set_id::text FROM audit_events")


def _walk_copy(connection: Connection, digest: Digest, low: int | None, high: int | None,
               watch: tuple[int, ...]) -> Part:
    """On PostgreSQL: batches of COPY text checked by `audit_copy` (canonical JSON from the bytes),
    the session's time zone set to UTC and its dates ISO, so timestamps print as the app wrote
    them. The walk ends at the newest event there was when it began, as one query's would."""
    raw = connection.connection.driver_connection
    raw.execute("SET LOCAL TIME ZONE 'UTC'")
    raw.execute("SET LOCAL DateStyle TO 'ISO'")
    if high is None:
        high = raw.execute("SELECT max(id) FROM audit_events").fetchone()[0]
    part = Part()
    if high is None:
        return part
    encoding, ids = raw.info.encoding, frozenset(str(i).encode() for i in watch)
    prev: bytes | None = None
    while True:
        lines, link, suspects = 0, None, []
        sql = audit_copy.statement(part.last_id, low, high)
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            for chunk in audit_copy.chunks(copy):
                run = audit_copy.fast(chunk, prev, ids) if encoding == "utf-8" else None
                run = run or audit_copy.slow(chunk, prev, ids, encoding)
                if part.first_id is None:
                    part.first_id, part.first_prev = run.first_id, run.first_prev
                suspects += [(part.checked + index, event_id) for index, event_id, _ in run.suspects]
                part.checked += run.count
                part.watched.update(run.watched)
                lines += run.count
                if run.broken is not None:
                    link = run.broken
                    break
                prev, part.last_id = run.last_hash, run.last_id
            for _ in copy:  # the rest of the batch after a broken link (the COPY must end)
                pass
        broken = _confirm(raw, suspects, digest)
        if broken is not None:
            part.checked, part.broken_id = broken
            part.reason = "hash does not match the event's content"
            return part
        if link is not None:
            part.broken_id, part.reason = link, "prev_hash does not link to the previous event"
            return part
        if lines < audit_copy.BATCH:
            part.last_hash = audit_copy.text(prev, encoding) if prev is not None else None
            return part


def _confirm(raw: Any, suspects: list[tuple[int, int]], digest: Digest) -> tuple[int, int] | None:
    """Of the events the fast ways could not match, the first (events checked before it, id)
    whose hash the app's own encoder rejects too, reading it as typed values."""
    if not suspects:
        return None
    with raw.cursor() as cursor:
        cursor.execute(_TYPED + " WHERE id = ANY(%s) ORDER BY id", [[event_id for _, event_id in suspects]])
        rows = {row[0]: row for row in cursor}
    for checked, event_id in suspects:
        if event_id not in rows or not _matches(rows[event_id], digest):
            return checked, event_id
    return None


def _core_rows(connection: Connection, low: int | None, high: int | None) -> Iterator[Sequence[Any]]:
    """Elsewhere (SQLite): a streamed Core select, no ORM objects."""
    stmt = select(*_columns()).order_by(AuditEvent.id)
    if low is not None:
        stmt = stmt.where(AuditEvent.id >= low)
    if high is not None:
        stmt = stmt.where(AuditEvent.id <= high)
    yield from connection.execution_options(yield_per=BATCH).execute(stmt)


def _uuid_text(value: str | None) -> str | None:
    """A uuid as `str(uuid.UUID)` writes it (SQLite keeps 32 hex digits without dashes)."""
    if value is None or len(value) == 36:
        return value
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"


def _payload(row: Sequence[Any]) -> dict[str, Any]:
    occurred_at = row[1]
    occurred_at = occurred_at.replace(tzinfo=UTC) if occurred_at.tzinfo is None else occurred_at.astimezone(UTC)
    return {"occurred_at": occurred_at.isoformat(), "actor_id": _uuid_text(row[2]), "actor_label": row[3],
            "ip": row[4], "user_agent": row[5], "request_id": row[6], "action": row[7], "entity_type": row[8],
            "entity_id": row[9],
            "changes": json_loads(row[10]) if type(row[10]) is str else row[10], "message": row[11], "prev_hash": row[12]}


def _matches(row: Sequence[Any], digest: Digest) -> bool:
    """Whether the row's stored hash is the hash of its content (orjson first, then `digest`,
    the app's own, when that differs)."""
    payload = _payload(row)
    if row[14] is not None:
        payload["change_set_id"] = _uuid_text(row[14])
    try:
        if hashlib.sha256(orjson.dumps(payload, option=_SORTED)).hexdigest() == row[13]:
            return True
    except (TypeError, orjson.JSONEncodeError):
        pass
    return digest(payload) == row[13]


def walk(connection: Connection, digest: Digest, low: int | None = None, high: int | None = None,
         watch: tuple[int, ...] = ()) -> Part:
    """Check the links and hashes of the events with ids in [low, high] (all when None);
    `digest` is the app's hash of a payload (`audit.hash_payload`)."""
    if connection.dialect.name == "postgresql":
        return _walk_copy(connection, digest, low, high, watch)
    part = Part()
    expected_prev: str | None = None
    for row in _core_rows(connection, low, high):
        event_id, prev_hash, stored = row[0], row[12], row[13]
        if expected_prev is None:
            part.first_id, part.first_prev = event_id, prev_hash
        elif prev_hash != expected_prev:
            part.broken_id, part.reason = event_id, "prev_hash does not link to the previous event"
            return part
        if not _matches(row, digest):
            part.broken_id, part.reason = event_id, "hash does not match the event's content"
            return part
        if event_id in watch:
            part.watched[event_id] = stored
        expected_prev = stored
        part.checked += 1
        part.last_id, part.last_hash = event_id, stored
    return part


def _walk_in_child(url: str, digest: Digest, low: int, high: int, watch: tuple[int, ...]) -> Part:
    """One part of a parallel walk, in a worker process with its own connection."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection, connection.begin():
            return walk(connection, digest, low, high, watch)
    finally:
        engine.dispose()


def walk_parts(session: Session, digest: Digest, watch: tuple[int, ...] = ()) -> list[Part]:
    """The whole chain as parts in id order: one on SQLite or for a small log, else one per
    core: the first walked here, on the session's connection, while spawned workers walk the
    others, each from its own connection (a committed, append-only log reads the same from
    any). The log's size is its span of ids (min and max are two index probes; a count of ten
    million rows took a second)."""
    connection = session.connection()
    workers = os.cpu_count() or 1
    if connection.dialect.name != "postgresql" or workers < 2:
        return [walk(connection, digest, watch=watch)]
    low, high = connection.execute(select(func.min(AuditEvent.id), func.max(AuditEvent.id))).one()
    if low is None or high - low + 1 < PARALLEL_MIN:
        return [walk(connection, digest, watch=watch)]
    step = (high - low + workers) // workers
    bounds = [(low + i * step, min(high, low + (i + 1) * step - 1)) for i in range(workers)]
    url = connection.engine.url.render_as_string(hide_password=False)
    # spawned, not forked: a forked child would share the parent's pooled connections
    with ProcessPoolExecutor(max_workers=workers - 1, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_walk_in_child, url, digest, a, b, watch) for a, b in bounds[1:]]
        first = walk(connection, digest, bounds[0][0], bounds[0][1], watch)
        return [first, *(f.result() for f in futures)]
