"""The audit chain with change sets (SPEC §3): an event's `change_set_id` is hashed only when it
has one, so every event written before the column existed still verifies; `record_many`'s
shared-member serialisation gives exactly the canonical JSON."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from webapp.models import AuditAction, AuditEvent
from webapp.services import audit
from webapp.services.actor import Actor
from webapp.services.audit import Entry, _Canonical, _dumps

ACTOR = Actor(user_id=None, label="someone@example.com", ip="10.0.0.1", user_agent="pytest", request_id="r1")


def _legacy_hash(event: AuditEvent) -> str:
    """The hash as it was computed before change sets existed."""
    payload = {
        "occurred_at": event.occurred_at.isoformat(),
        "actor_id": str(event.actor_id) if event.actor_id else None,
        "actor_label": event.actor_label, "ip": event.ip, "user_agent": event.user_agent,
        "request_id": event.request_id, "action": AuditAction(event.action).value,
        "entity_type": event.entity_type, "entity_id": event.entity_id, "changes": event.changes,
        "message": event.message, "prev_hash": event.prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_an_event_outside_change_sets_hashes_as_before():
    event = AuditEvent(occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), actor_id=None,
                       actor_label="x", ip=None, user_agent=None, request_id=None,
                       action=AuditAction.update, entity_type="asset", entity_id="a",
                       changes={"owner": ["a", "b"]}, message=None, prev_hash="0" * 64)
    assert audit.compute_hash(event) == _legacy_hash(event)
    event.change_set_id = uuid.uuid4()
    assert audit.compute_hash(event) != _legacy_hash(event)


def test_shared_member_serialisation_is_the_canonical_json():
    shared = {"occurred_at": "2026-01-02T03:04:05+00:00", "actor_id": None, "actor_label": "Zoë «x»",
              "ip": "::1", "user_agent": "a\"b", "request_id": None, "change_set_id": str(uuid.uuid4())}
    canonical = _Canonical(shared, ("action", "entity_type", "entity_id", "changes", "message", "prev_hash"))
    own = {"action": "update", "entity_type": "asset", "entity_id": "id-1", "message": "ünïcode\n",
           "prev_hash": "f" * 64}
    changes = {"tags": [["b", "a"], []], "metadata": [None, {"z": 1, "a": {"y": 2.5, "b": True}}],
               "version": [1, 2]}
    assert canonical.of(own, _dumps(changes)) == _dumps({**shared, **own, "changes": changes})


def test_events_with_and_without_a_change_set_verify(session):
    change_set = uuid.uuid4()
    from webapp.models import ChangeSet

    session.add(ChangeSet(id=change_set, actor_label="x", selection={}, params={}, preview={}, reported=[]))
    session.flush()
    audit.record(session, ACTOR, AuditAction.update, "asset", "a", {"owner": ["x", "y"]})
    audit.record(session, ACTOR, AuditAction.update, "asset", "b", {"owner": ["x", "y"]},
                 change_set_id=change_set)
    audit.record_many(session, ACTOR, [Entry(AuditAction.update, "asset", f"c{i}", {"owner": ["x", "y"]})
                                       for i in range(3)], change_set_id=change_set)
    audit.record_many(session, ACTOR, [Entry(AuditAction.update, "asset", "d", {"connection_string": ["p", "q"]})])
    session.commit()
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [e.change_set_id for e in events] == [None, change_set, change_set, change_set, change_set, None]
    assert events[-1].changes == {"connection_string": ["***", "***"]}
    assert all(audit.compute_hash(e) == e.hash for e in events)
    assert audit.verify(session).ok
