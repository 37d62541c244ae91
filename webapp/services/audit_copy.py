"""`audit verify` on PostgreSQL: the events as COPY text, each event's canonical JSON written
straight from its bytes (SPEC §11).

Reading rows through psycopg's cursor and building a dict per event for orjson cost about 7 µs
of the 8 µs per event. Here the events come in batches of `COPY (SELECT …) TO STDOUT` text (no
type adaptation per row: a few thousand lines joined, split on newlines and tabs) and each
event's canonical JSON is one bytes template filled with its fields: the keys are always the
same, in sorted order, and a text field's COPY bytes are already its JSON string's contents
when it holds no `"` (checked by counting the chunk's quotes against those of `changes`) and no
control character but tab, newline, CR, backspace and form feed, whose COPY escapes are JSON's.
`changes` is re-encoded with orjson (sorted keys, no spaces: jsonb prints its keys in another
order), unescaped first when COPY doubled a backslash in it. A chunk in which any event's hash
does not match is checked again line by line: every field unescaped and decoded, the payload a
dict encoded by orjson. An event still not matching is only a *suspect*: `audit_walk` reads it
again as typed values and asks the app's own encoder.

Why a match of the fast bytes proves the event intact: the fast bytes are always valid JSON of
the event as stored, or invalid JSON (a raw control character, COPY's `\v`), which can never
equal the app's text. Equal to the canonical text the event was hashed from, they decode to the
same payload, so no field changed. A quote in a text field would break that (its bytes could
end one field and start another), hence the count.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

BATCH = 200_000  # events per COPY statement: between two, suspects are read again as typed values
CHUNK = 2_000  # lines checked at a time
NULL = b"\\N"
_SORTED = orjson.OPT_SORT_KEYS

# the COPY's columns: the stored hash and the link first, then the payload's fields in the
# canonical (sorted) order of their keys
COLUMNS = ("hash, prev_hash, id, action, actor_id, actor_label, change_set_id, changes, entity_id, "
           "entity_type, ip, message, occurred_at, request_id, user_agent")
_TEMPLATE = (b'{"action":"%b","actor_id":%b,"actor_label":"%b",%b"changes":%b,"entity_id":%b,'
             b'"entity_type":"%b","ip":%b,"message":%b,"occurred_at":"%b","prev_hash":"%b",'
             b'"request_id":%b,"user_agent":%b}')


@dataclass
class Run:
    """What one batch of lines says: its ends, its first broken link, the events whose hash
    did not match (index in the batch, id, stored hash as text) and the watched ids' hashes."""

    count: int = 0  # events checked before `broken` (all of them when None)
    first_id: int | None = None
    first_prev: str | None = None
    last_id: int | None = None
    last_hash: bytes | None = None  # as COPY printed it: the next batch's first link
    broken: int | None = None  # id of the first event whose prev_hash is not its predecessor's hash
    suspects: list[tuple[int, int, str]] = field(default_factory=list)
    watched: dict[int, str] = field(default_factory=dict)


def statement(after: int | None, low: int | None, high: int | None) -> str:
    """The COPY of the next batch: ids past `after` (or from `low`), up to `high`."""
    where = []
    if after is not None:
        where.append(f"id > {int(after)}")
    elif low is not None:
        where.append(f"id >= {int(low)}")
    if high is not None:
        where.append(f"id <= {int(high)}")
    return (f"COPY (SELECT {COLUMNS} FROM audit_events" + (" WHERE " + " AND ".join(where) if where else "")
            + f" ORDER BY id LIMIT {BATCH}) TO STDOUT")


def chunks(copy: Any) -> Iterator[bytes]:
    """The COPY's text as it arrives, a few thousand whole lines at a time (so the server
    writes the next ones while these are checked)."""
    buffer: list[Any] = []
    tail = b""
    for data in copy:
        buffer.append(data)
        if len(buffer) == CHUNK:
            chunk, buffer = tail + b"".join(buffer), []
            cut = chunk.rfind(b"\n") + 1  # PostgreSQL sends a line a message: the cut is the end
            chunk, tail = (chunk, b"") if cut == len(chunk) else (chunk[:cut], chunk[cut:])
            if chunk:
                yield chunk
    if tail or buffer:
        yield tail + b"".join(buffer)


_ESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|(.))", re.DOTALL)
_ESCAPES = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}


def _escaped(match: re.Match[bytes]) -> bytes:
    octal, hexa, char = match.groups()
    if octal is not None:
        return bytes((int(octal, 8) & 0xFF,))
    if hexa is not None:
        return bytes((int(hexa, 16),))
    return _ESCAPES.get(char, char)


def unescape(value: bytes) -> bytes:
    """A COPY text field with its backslash escapes undone (`\\\\`, `\\t`, `\\n`, … and the
    octal and hex forms, which COPY TO does not write but the format has)."""
    return _ESCAPE.sub(_escaped, value) if b"\\" in value else value


def iso(text: bytes) -> bytes | None:
    """`datetime.isoformat()` of a UTC timestamp from its ISO text output (`2026-12-07
    22:53:56.1234+00`: fraction trimmed of its trailing zeros, none when zero); None for what
    the fast paths leave to the typed one (other offsets, years past 9999, BC)."""
    if len(text) == 29 and text[10] == 0x20 and text[19] == 0x2E and text.endswith(b"+00"):
        return text[:10] + b"T" + text[11:26] + b"+00:00"
    date, space, rest = text.partition(b" ")
    if not space or len(date) != 10 or not rest.endswith(b"+00"):
        return None
    clock = rest[:-3]
    if len(clock) == 8:
        return date + b"T" + clock + b"+00:00"
    if not 10 <= len(clock) <= 15 or clock[8] != 0x2E:
        return None
    return date + b"T" + clock.ljust(15, b"0") + b"+00:00"


def fast(chunk: bytes, prev: bytes | None, watch: Collection[bytes]) -> Run | None:
    """The chunk checked with each event's canonical JSON filled into one template; None when
    it needs the slow path (a quote outside `changes`, a timestamp or a `changes` the template
    cannot take, or any event not matching its hash or link)."""
    lines = chunk.split(b"\n")
    lines.pop()
    if not lines:
        return Run()
    sha256, loads, dumps, template, null, none = hashlib.sha256, orjson.loads, orjson.dumps, _TEMPLATE, NULL, b"null"
    quotes = 0
    last_occ = stamp = None
    run = Run(count=len(lines))
    try:
        for line in lines:
            (stored, prev_hash, event_id, action, actor_id, label, change_set, changes, entity_id, entity_type, ip,
             message, occurred_at, request_id, user_agent) = line.split(b"\t")
            if prev_hash != prev and prev is not None:
                return None
            if occurred_at != last_occ:  # the events of one write share their time
                last_occ, stamp = occurred_at, iso(occurred_at)
                if stamp is None:
                    return None
            quotes += changes.count(b'"')
            if b"\\" in changes:
                changes = unescape(changes)  # jsonb printed an escape: COPY doubled its backslash
            blob = template % (
                action, none if actor_id == null else b'"%b"' % actor_id, label,
                b"" if change_set == null else b'"change_set_id":"%b",' % change_set,
                b"{}" if changes == b"{}" else dumps(loads(changes), option=_SORTED),
                none if entity_id == null else b'"%b"' % entity_id, entity_type,
                none if ip == null else b'"%b"' % ip, none if message == null else b'"%b"' % message,
                stamp, prev_hash, none if request_id == null else b'"%b"' % request_id,
                none if user_agent == null else b'"%b"' % user_agent)
            if sha256(blob).hexdigest().encode() != stored:
                return None
            if watch and event_id in watch:
                run.watched[int(event_id)] = stored.decode()
            prev = stored
    except (ValueError, orjson.JSONDecodeError):
        return None  # not 15 fields, or integers orjson refuses
    if chunk.count(b'"') != quotes:
        return None  # a quote in a value outside `changes`
    first = lines[0].split(b"\t", 3)
    run.first_id, run.first_prev = int(first[2]), first[1].decode()
    run.last_id, run.last_hash = int(event_id), stored
    return run


def slow(chunk: bytes, prev: bytes | None, watch: Collection[bytes], encoding: str) -> Run:
    """The batch line by line: every field unescaped and decoded, each payload a dict encoded by
    orjson; an event that still does not match is a suspect (or the batch ends at a broken link)."""
    lines = chunk.split(b"\n")
    lines.pop()
    run = Run()
    for index, line in enumerate(lines):
        fields = line.split(b"\t")
        stored, prev_hash, event_id = fields[0], fields[1], int(fields[2])
        if index == 0:
            run.first_id, run.first_prev = event_id, text(prev_hash, encoding)
        if prev is not None and prev_hash != prev:  # the escaped texts are equal when the values are
            run.broken = event_id
            return run
        digest = _digest(fields, encoding)
        if digest is None or digest.encode() != stored:
            run.suspects.append((index, event_id, text(stored, encoding) or ""))
        if fields[2] in watch:
            run.watched[event_id] = text(stored, encoding) or ""
        run.count += 1
        run.last_id, run.last_hash, prev = event_id, stored, stored
    return run


def text(value: bytes, encoding: str) -> str | None:
    return None if value == NULL else unescape(value).decode(encoding)


def _digest(fields: list[bytes], encoding: str) -> str | None:
    """SHA-256 of the orjson text of the line's payload; None when it has none the fast ways
    can write (a timestamp `iso` leaves alone, integers orjson refuses, text not decoding)."""
    try:
        texts = [text(v, encoding) for v in fields]
        stamp = iso(texts[12].encode()) if texts[12] is not None else None
        if stamp is None or texts[7] is None:
            return None
        payload = {"action": texts[3], "actor_id": texts[4], "actor_label": texts[5], "changes": orjson.loads(texts[7]),
                   "entity_id": texts[8], "entity_type": texts[9], "ip": texts[10], "message": texts[11],
                   "occurred_at": stamp.decode(), "prev_hash": texts[1], "request_id": texts[13],
                   "user_agent": texts[14]}
        if texts[6] is not None:
            payload["change_set_id"] = texts[6]
        return hashlib.sha256(orjson.dumps(payload, option=_SORTED)).hexdigest()
    except (ValueError, IndexError, orjson.JSONDecodeError, orjson.JSONEncodeError):
        return None  # UnicodeDecodeError is a ValueError
