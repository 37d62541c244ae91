"""The outbox (SPEC §10, §13): events that must reach someone are written in the same
transaction as the change that caused them, by the service that makes the change.

    outbox.emit(session, "import_failed", subject="Import of aws.json failed",
                severity=EventSeverity.high, link=f"/imports/{run.id}",
                payload={"import_id": str(run.id)}, recipient_id=run.started_by)
    session.commit()      # the change, its audit event and its outbox row, or none of them

`emit` only adds a row to the session; it never sends anything. A dispatcher job turns each
undispatched row into notifications, e-mails and webhook deliveries, so a rollback leaves no
event, a crash after the commit loses none, and Redis being down only delays them.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import EventSeverity, OutboxEvent, Role
from webapp.models.base import utcnow

PENDING = "outbox_pending"  # session.info: this transaction wrote outbox rows (kick the dispatcher)

# every event kind, with what a person reads for it (the account page's choices, webhook kinds)
KINDS: dict[str, str] = {
    "import_finished": "An import finished",
    "import_failed": "An import failed",
    "review_waiting": "Review items are waiting",
    "policy_failing": "An asset newly fails a high or critical control",
    "assets_stale": "Assets turned stale",
    "lockout": "An account was locked out",
    "key_rotation": "The encryption key was rotated",
    "exception_expiring": "A policy exception is expiring",
    "task_failed": "A scheduled task failed",
    "webhook_failed": "A webhook delivery failed for good",
}


class UnknownEventKind(ValueError):
    pass


def emit(session: Session, kind: str, *, subject: str, severity: EventSeverity = EventSeverity.info,
         body: str = "", link: str | None = None, payload: dict[str, Any] | None = None,
         recipient_id: uuid.UUID | None = None, min_role: Role = Role.viewer,
         dedupe_key: str | None = None) -> OutboxEvent | None:
    """Add an event to the caller's transaction (never commits, never sends). With a
    `dedupe_key` already raised, nothing is added and None is returned."""
    if kind not in KINDS:
        raise UnknownEventKind(kind)
    if dedupe_key is not None:
        key = dedupe_key[:200]
        pending = [e for e in session.new if isinstance(e, OutboxEvent) and e.dedupe_key == key]
        if pending or session.scalar(select(OutboxEvent.id).where(OutboxEvent.dedupe_key == key)):
            return None
        dedupe_key = key
    event = OutboxEvent(
        id=uuid.uuid4(), kind=kind, severity=severity, subject=subject[:300], body=body,
        link=link, payload=payload or {}, recipient_id=recipient_id, min_role=min_role,
        dedupe_key=dedupe_key, created_at=utcnow(), attempts=0,
    )
    session.add(event)
    session.info[PENDING] = True
    return event
