"""Webhooks (SPEC §13): admin-registered receivers of outbox events.

    fan_out(session, event)          # the dispatcher: one pending delivery per subscribed webhook
    send_due(session, now=…)         # the scheduler, every minute: send what is due
    send_deliveries(session, ids)    # the webhooks job, right after the dispatcher's commit

A delivery is a POST of one JSON body, signed with the webhook's secret; its id (the
`X-Inventory-Delivery` header) is the same on every retry and redelivery, so a receiver can drop
repeats. Each attempt runs in a short transaction of its own and is logged (`webhook_attempts`);
a failed one is retried with exponential backoff and jitter, up to `MAX_ATTEMPTS`, and the last
failure raises a `webhook_failed` outbox event for admins.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, literal_column, select
from sqlalchemy.orm import Session

from webapp.models import OutboxEvent
from webapp.models.base import utcnow
from webapp.models.webhook import DeliveryStatus, Webhook, WebhookDelivery

NEW_DELIVERIES = "webhook_deliveries_new"  # session.info: ids fan_out added (the job kicks them)


# --- the body ---------------------------------------------------------------------------------

def event_body(event_id: uuid.UUID, kind: str, *, created_at: datetime, subject: str, severity: str,
               link: str | None, data: dict[str, Any]) -> str:
    """The exact JSON text a receiver gets (and the signature covers)."""
    return json.dumps({
        "id": str(event_id),
        "event": kind,
        "created_at": created_at.isoformat(),
        "subject": subject,
        "severity": severity,
        "link": link,
        "data": data,
    }, separators=(",", ":"), ensure_ascii=False, sort_keys=False, default=str)


def body_of(event: OutboxEvent) -> str:
    return event_body(event.id, event.kind, created_at=event.created_at or utcnow(), subject=event.subject,
                      severity=str(getattr(event.severity, "value", event.severity)), link=event.link,
                      data=event.payload or {})


# --- fan out ----------------------------------------------------------------------------------

def _subscribed(session: Session, kind: str) -> Any:
    """SQL: the webhook's `kinds` list holds `kind`."""
    if session.get_bind().dialect.name == "postgresql":
        return Webhook.kinds.op("?")(kind)  # jsonb: the array has this string element
    values = func.json_each(Webhook.kinds).table_valued("value")
    return exists(select(literal_column("1")).select_from(values).where(values.c.value == kind))


def fan_out(session: Session, event: OutboxEvent) -> int:
    """Add one pending delivery per active webhook subscribed to `event.kind`, in the caller's
    (the dispatcher's) transaction, and return how many. Nothing is sent here: the webhooks job
    sends them once the caller has committed (or `send_due` does, a minute later at most).
    Running again for the same event adds nothing (one delivery per webhook and event)."""
    already = exists().where(WebhookDelivery.webhook_id == Webhook.id, WebhookDelivery.event_id == event.id)
    webhook_ids = list(session.scalars(
        select(Webhook.id).where(Webhook.active.is_(True), _subscribed(session, event.kind), ~already)
    ))
    if not webhook_ids:
        return 0
    body = body_of(event)
    now = utcnow()
    rows = [
        {"id": uuid.uuid4(), "webhook_id": webhook_id, "event_id": event.id, "kind": event.kind,
         "body": body, "status": DeliveryStatus.pending, "attempts": 0, "next_attempt_at": now,
         "created_at": now}
        for webhook_id in webhook_ids
    ]
    session.execute(WebhookDelivery.__table__.insert(), rows)
    session.info.setdefault(NEW_DELIVERIES, []).extend(row["id"] for row in rows)
    return len(rows)
