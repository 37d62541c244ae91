"""The audit log: one function writes every event, in the caller's transaction.

Events form a hash chain: `hash = sha256(canonical JSON of the event + prev_hash)`. Appends are
serialised with a PostgreSQL advisory lock (on SQLite, the database's write lock, taken before the
last hash is read); a unique `prev_hash` makes a fork impossible on any backend. Every append also moves the chain's **anchor** (the newest event's id and hash, in the
`settings` row `audit_anchor`) in the same transaction, so `verify` reports a log cut short (a
TRUNCATE, or its newest events deleted) rather than an intact shorter chain. An operator keeps
copies of the anchor elsewhere (`flask stats` prints it) and can check against one with
`flask audit verify --anchor ID:HASH`.
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from json.encoder import encode_basestring as _encode_text  # type: ignore[attr-defined]
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import AuditAction, AuditEvent, Setting
from webapp.models.base import utcnow
from webapp.services import bulk
from webapp.services.actor import Actor

GENESIS_HASH = "0" * 64
SECRET_FIELDS = frozenset({"connection_string", "password", "password_hash", "secret", "token"})
MASK = "***"
# arbitrary constant naming the audit chain's advisory lock
AUDIT_CHAIN_LOCK = 0x41554454
ANCHOR_KEY = "audit_anchor"


_PLAIN = frozenset({type(None), bool, int, float, str})
# from here on Python writes a float with an exponent (`1e+16`), which jsonb keeps as the
# integer it is and gives back as one: such a float is recorded as that integer, or the event's
# hash would be of text the stored event no longer reads as (`audit verify` would call it broken)
BIG_FLOAT = 1e16


def jsonable(value: Any) -> Any:
    """The JSON form a value takes in an audit diff (stable across a database round trip)."""
    if type(value) is float and abs(value) >= BIG_FLOAT and value.is_integer():
        return int(value)
    if type(value) in _PLAIN or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


def mask_secrets(changes: dict[str, Any]) -> dict[str, Any]:
    masked = {}
    for field, pair in changes.items():
        if field in SECRET_FIELDS:
            masked[field] = [MASK if v is not None else None for v in pair]
        else:
            masked[field] = jsonable(pair)
    return masked


def compute_hash(event: AuditEvent) -> str:
    payload = {
        "occurred_at": event.occurred_at.isoformat(),
        "actor_id": str(event.actor_id) if event.actor_id else None,
        "actor_label": event.actor_label,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "action": AuditAction(event.action).value,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "changes": event.changes,
        "message": event.message,
        "prev_hash": event.prev_hash,
    }
    return hash_payload(with_change_set(payload, event.change_set_id))


def with_change_set(payload: dict[str, Any], change_set_id: Any) -> dict[str, Any]:
    """The payload with `change_set_id` when the event belongs to a change set. Only then: an
    event outside change sets hashes exactly as before the column existed, so every event
    written earlier still verifies."""
    if change_set_id is not None:
        payload["change_set_id"] = str(change_set_id)
    return payload


def hash_payload(payload: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of an event's fields (those `compute_hash` lists)."""
    return hashlib.sha256(_dumps(payload).encode()).hexdigest()


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _dumps(value: Any) -> str:
    """The canonical JSON of a value: keys sorted, no spaces, text as it is (what
    `json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` gives)."""
    if type(value) is str:
        return _encode_text(value)
    if value is None:
        return "null"
    return _CANONICAL.encode(value)


class _Canonical:
    """`_dumps(payload)` for many payloads that share most of their fields, without serialising
    the shared ones again for each: the canonical JSON of an object is its members in sorted
    key order, each `"key":value` with the value serialised the same way, so the shared members
    are serialised once and each payload's own are put in their places (`record_many`)."""

    def __init__(self, shared: dict[str, Any], own: tuple[str, ...]) -> None:
        self.order = sorted([*shared, *own])
        self.shared = {k: f"{_dumps(k)}:{_dumps(v)}" for k, v in shared.items()}
        self.keys = {k: f"{_dumps(k)}:" for k in own}

    def of(self, own: dict[str, Any], changes_json: str) -> str:
        members = []
        for key in self.order:
            if key in self.shared:
                members.append(self.shared[key])
            else:
                members.append(self.keys[key] + (changes_json if key == "changes" else _dumps(own[key])))
        return "{" + ",".join(members) + "}"


def _lock_chain(session: Session) -> None:
    bulk.append_lock(session, AUDIT_CHAIN_LOCK)


def record(
    session: Session,
    actor: Actor,
    action: AuditAction,
    entity_type: str,
    entity_id: Any = None,
    changes: dict[str, Any] | None = None,
    message: str | None = None,
    *,
    change_set_id: uuid.UUID | None = None,
) -> AuditEvent:
    """Append one event to the chain. The caller commits it together with the change.

    `change_set_id`: the change set (bulk action, undo) the event is part of (default: the
    actor's)."""
    change_set_id = change_set_id or actor.change_set_id
    _lock_chain(session)
    session.flush()
    prev = session.execute(
        select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
    event = AuditEvent(
        occurred_at=utcnow(),
        actor_id=actor.user_id,
        actor_label=actor.label[:300],
        ip=actor.ip,
        user_agent=(actor.user_agent or None) and actor.user_agent[:500],
        request_id=actor.request_id,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id) if entity_id is not None else None,
        changes=mask_secrets(changes or {}),
        message=message,
        prev_hash=prev or GENESIS_HASH,
        change_set_id=change_set_id,
    )
    event.hash = compute_hash(event)
    session.add(event)
    session.flush()
    _move_anchor(session, event.id, event.hash)
    return event


@dataclass(frozen=True)
class Entry:
    """One event for `record_many`."""

    action: AuditAction
    entity_type: str
    entity_id: Any
    changes: dict[str, Any]
    message: str | None = None
    masked: bool = False  # `changes` already went through mask_secrets (JSON values, no secret)


def record_many(session: Session, actor: Actor, entries: list[Entry], *,
                change_set_id: uuid.UUID | None = None) -> int:
    """Append many events by one actor at once (an import batch), in the caller's transaction.

    The same chain as `record`: the lock is taken once, ids are drawn in order, each event's
    hash covers its predecessor's, and the rows go in with one bulk insert. `change_set_id`:
    the change set (a bulk action's batch, an undo's) every one of them is part of.
    """
    if not entries:
        return 0
    change_set_id = change_set_id or actor.change_set_id
    _lock_chain(session)
    session.flush()
    prev = session.execute(
        select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar_one_or_none() or GENESIS_HASH
    ids = bulk.next_ids(session, AuditEvent.__table__, len(entries))
    now = utcnow()
    common = {
        "occurred_at": now.isoformat(),
        "actor_id": str(actor.user_id) if actor.user_id else None,
        "actor_label": actor.label[:300],
        "ip": actor.ip,
        "user_agent": (actor.user_agent or None) and actor.user_agent[:500],
        "request_id": actor.request_id,
    }
    shared = with_change_set(dict(common), change_set_id)
    canonical = _Canonical(shared, ("action", "entity_type", "entity_id", "changes", "message", "prev_hash"))
    plain_json = not bulk.is_postgresql(session)  # SQLite's JSON column serialises values itself
    rows = []
    for event_id, entry in zip(ids, entries, strict=True):
        changes = entry.changes if entry.masked else mask_secrets(entry.changes)
        own = {
            "action": AuditAction(entry.action).value,
            "entity_type": entry.entity_type,
            "entity_id": str(entry.entity_id) if entry.entity_id is not None else None,
            "message": entry.message,
            "prev_hash": prev,
        }
        changes_json = _dumps(changes)
        digest = hashlib.sha256(canonical.of(own, changes_json).encode()).hexdigest()
        rows.append({**common, **own, "changes": changes if plain_json else bulk.JSONText(changes_json),
                     "id": event_id, "occurred_at": now, "actor_id": actor.user_id, "hash": digest})
        if change_set_id is not None:
            rows[-1]["change_set_id"] = change_set_id
        prev = digest
    bulk.insert_rows(session, AuditEvent.__table__, rows)
    _move_anchor(session, rows[-1]["id"], rows[-1]["hash"])
    return len(rows)


@dataclass(frozen=True)
class Anchor:
    """The newest event as the app last wrote it: where an intact chain must end."""

    id: int
    hash: str

    def __str__(self) -> str:
        return f"{self.id}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """`ID:HASH`, as `flask stats` and `audit verify` print it."""
        event_id, _, digest = text.strip().partition(":")
        if not event_id.isdigit() or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError("Give the anchor as ID:HASH, e.g. 1234:9f86d0…(64 hex digits).")
        return cls(int(event_id), digest)


def _move_anchor(session: Session, event_id: int, digest: str) -> None:
    """Point the anchor at the newest event, in the append's transaction (one upsert)."""
    bulk.upsert(session, Setting.__table__, {"key": ANCHOR_KEY, "value": {"id": event_id, "hash": digest},
                                             "updated_at": utcnow()}, ["key"])


def anchor(session: Session) -> Anchor | None:
    value = session.scalar(select(Setting.value).where(Setting.key == ANCHOR_KEY))
    if not isinstance(value, dict) or not isinstance(value.get("id"), int) or not value.get("hash"):
        return None
    return Anchor(value["id"], str(value["hash"]))


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_broken_id: int | None = None
    reason: str | None = None
    anchor: Anchor | None = None


def verify(session: Session, expect: Anchor | None = None) -> VerifyResult:
    """Walk the whole chain in id order; name the first event whose link or hash is wrong.

    The chain must then end exactly at the recorded anchor: a log that stops short of it was
    cut (truncated, newest events deleted); events past it were not written by the app. With
    `expect` (an anchor an operator kept elsewhere) that event must be in the chain too.
    The walk itself (raw rows, both cores on a large log) is `audit_walk`'s.
    """
    from webapp.services import audit_walk

    recorded = anchor(session)
    expected_prev = GENESIS_HASH
    checked = 0
    last: Anchor | None = None
    watched: dict[int, str] = {}
    for part in audit_walk.walk_parts(session, hash_payload, watch=(expect.id,) if expect else ()):
        if part.first_id is None:
            continue  # an empty stretch of ids
        if part.first_prev != expected_prev:
            return VerifyResult(False, checked, part.first_id, "prev_hash does not link to the previous event",
                                recorded)
        if part.broken_id is not None:
            return VerifyResult(False, checked + part.checked, part.broken_id, part.reason, recorded)
        checked += part.checked
        watched.update(part.watched)
        assert part.last_id is not None and part.last_hash is not None
        expected_prev, last = part.last_hash, Anchor(part.last_id, part.last_hash)
    seen_expected = expect is None or expect.id in watched
    if expect is not None and seen_expected and watched[expect.id] != expect.hash:
        return VerifyResult(False, checked, expect.id, "the event does not have the hash of the anchor given",
                            recorded)
    if not seen_expected:
        assert expect is not None
        return VerifyResult(False, checked, None, f"the anchor given (event {expect.id}) is not in the log: "
                            "events were removed", recorded)
    if recorded is None:
        if last is None:
            return VerifyResult(True, 0)
        return VerifyResult(False, checked, None, "no anchor is recorded, so a cut log cannot be told apart "
                            "from an intact one (the settings row audit_anchor was removed)")
    if last is None:
        return VerifyResult(False, 0, None, f"the log is empty but the anchor names event {recorded.id}: "
                            "it was truncated", recorded)
    if last.id < recorded.id:
        return VerifyResult(False, checked, None, f"the chain ends at event {last.id} but the anchor names event "
                            f"{recorded.id}: the newest events were removed", recorded)
    if last != recorded:
        return VerifyResult(False, checked, last.id, f"the chain ends at event {last.id}, not at the anchor "
                            f"(event {recorded.id}): events were added outside the app, or the anchor was changed",
                            recorded)
    return VerifyResult(True, checked, anchor=recorded)
