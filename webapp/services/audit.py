"""The audit log: one function writes every event, in the caller's transaction.

Events form a hash chain: `hash = sha256(canonical JSON of the event + prev_hash)`. Appends are
serialised with a PostgreSQL advisory lock; a unique `prev_hash` makes a fork impossible on any
backend.
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import AuditAction, AuditEvent
from webapp.models.base import utcnow
from webapp.services import bulk
from webapp.services.actor import Actor

GENESIS_HASH = "0" * 64
SECRET_FIELDS = frozenset({"connection_string", "password", "password_hash", "secret", "token"})
MASK = "***"
# arbitrary constant naming the audit chain's advisory lock
AUDIT_CHAIN_LOCK = 0x41554454


_PLAIN = frozenset({type(None), bool, int, float, str})


def jsonable(value: Any) -> Any:
    """The JSON form a value takes in an audit diff (stable across a database round trip)."""
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
    return hash_payload({
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
    })


def hash_payload(payload: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of an event's fields (those `compute_hash` lists)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock_chain(session: Session) -> None:
    bulk.advisory_lock(session, AUDIT_CHAIN_LOCK)


def record(
    session: Session,
    actor: Actor,
    action: AuditAction,
    entity_type: str,
    entity_id: Any = None,
    changes: dict[str, Any] | None = None,
    message: str | None = None,
) -> AuditEvent:
    """Append one event to the chain. The caller commits it together with the change."""
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
    )
    event.hash = compute_hash(event)
    session.add(event)
    session.flush()
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


def record_many(session: Session, actor: Actor, entries: list[Entry]) -> int:
    """Append many events by one actor at once (an import batch), in the caller's transaction.

    The same chain as `record`: the lock is taken once, ids are drawn in order, each event's
    hash covers its predecessor's, and the rows go in with one bulk insert.
    """
    if not entries:
        return 0
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
    rows = []
    for event_id, entry in zip(ids, entries, strict=True):
        payload = {
            **common,
            "action": AuditAction(entry.action).value,
            "entity_type": entry.entity_type,
            "entity_id": str(entry.entity_id) if entry.entity_id is not None else None,
            "changes": entry.changes if entry.masked else mask_secrets(entry.changes),
            "message": entry.message,
            "prev_hash": prev,
        }
        digest = hash_payload(payload)
        rows.append({**payload, "id": event_id, "occurred_at": now, "actor_id": actor.user_id,
                     "hash": digest})
        prev = digest
    bulk.insert_rows(session, AuditEvent.__table__, rows)
    return len(rows)


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_broken_id: int | None = None
    reason: str | None = None


def verify(session: Session, batch_size: int = 5000) -> VerifyResult:
    """Walk the whole chain in id order; name the first event whose link or hash is wrong."""
    expected_prev = GENESIS_HASH
    checked = 0
    stmt = select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=batch_size)
    for event in session.scalars(stmt):
        if event.prev_hash != expected_prev:
            return VerifyResult(False, checked, event.id, "prev_hash does not link to the previous event")
        if compute_hash(event) != event.hash:
            return VerifyResult(False, checked, event.id, "hash does not match the event's content")
        expected_prev = event.hash
        checked += 1
        session.expunge(event)
    return VerifyResult(True, checked)
