"""The outbox's dispatcher (SPEC §10, §13): turns undispatched events into in-app notifications
and webhook deliveries, then sends the immediate e-mails those notifications owe.

    dispatch_pending(session)     # the "notifications" job after a commit that wrote events,
                                  # and the scheduler's periodic sweep (Redis down: events wait)

Events are taken oldest first and locked `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two
dispatchers never take the same event. Each event is handled in a savepoint: one that fails
records `last_error` and stays undispatched (retried next time, up to MAX_ATTEMPTS) without
stopping the others.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import OutboxEvent
from webapp.models.base import utcnow
from webapp.services import mail, notifications

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 50  # an event failing this often is left with its last_error for a person to read
ERROR_MAX = 2_000


def _webhook_fan_out():  # type: ignore[no-untyped-def]
    """webhooks.fan_out, or None while that module does not exist (built alongside)."""
    try:
        from webapp.services import webhooks
    except ModuleNotFoundError as exc:
        if exc.name == "webapp.services.webhooks":
            return None
        raise
    return webhooks.fan_out


def dispatch_pending(session: Session, *, now: datetime | None = None, limit: int = 500) -> int:
    """Dispatch up to `limit` undispatched events, oldest first; commits; returns how many were
    dispatched (failed ones are not counted: they keep `last_error` and wait for the next run).
    Then sends the immediate e-mails owed, after the notifications are committed."""
    now = now or utcnow()
    webhook_fan_out = _webhook_fan_out()
    mail_enabled = mail.settings() is not None
    events = list(session.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.dispatched_at.is_(None), OutboxEvent.attempts < MAX_ATTEMPTS)
        .order_by(OutboxEvent.created_at, OutboxEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ))
    dispatched = 0
    for event in events:
        event.attempts = (event.attempts or 0) + 1
        try:
            with session.begin_nested():
                notifications.fan_out(session, event, mail_enabled=mail_enabled, now=now)
                if webhook_fan_out is not None:
                    webhook_fan_out(session, event)
        except Exception as exc:  # one event's failure must not hold back the others
            log.warning("Dispatching outbox event %s (%s) failed: %s", event.id, event.kind, exc, exc_info=True)
            event.last_error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
            continue
        event.dispatched_at = now
        event.last_error = None
        dispatched += 1
    session.commit()
    if mail_enabled:
        notifications.send_immediate(session, now=now)
    return dispatched
