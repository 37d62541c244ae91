"""Maintenance prunes what would otherwise grow for ever (SPEC §13): finished webhook deliveries
older than 30 days (each webhook's latest kept, pending ones never) with their attempts, and
notifications read more than 90 days ago (unread ones never)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from webapp.models import EventSeverity, Notification, OutboxEvent
from webapp.models.base import utcnow
from webapp.models.webhook import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery
from webapp.services import maintenance, notifications, webhook_history
from webapp.services.actor import Actor

NOW = utcnow()


def _count(session, model) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model)) or 0


def _delivery(session, hook: Webhook, *, days_ago: int, status: DeliveryStatus) -> WebhookDelivery:  # type: ignore[no-untyped-def]
    when = NOW - timedelta(days=days_ago)
    delivery = WebhookDelivery(id=uuid.uuid4(), webhook_id=hook.id, event_id=uuid.uuid4(),
                               kind="import_failed", body="{}", status=status, attempts=1,
                               created_at=when, finished_at=None if status is DeliveryStatus.pending else when)
    session.add(delivery)
    session.flush()
    session.add(WebhookAttempt(delivery_id=delivery.id, attempted_at=when, status_code=200, duration_ms=5))
    return delivery


def test_old_finished_deliveries_go_with_their_attempts(session):
    hook = Webhook(id=uuid.uuid4(), name="siem", url="https://siem.example.com/hook",
                   secret_encrypted="x", kinds=["import_failed"], active=True)
    session.add(hook)
    session.flush()
    old_ok = _delivery(session, hook, days_ago=40, status=DeliveryStatus.succeeded)
    old_failed = _delivery(session, hook, days_ago=35, status=DeliveryStatus.failed)
    old_pending = _delivery(session, hook, days_ago=45, status=DeliveryStatus.pending)
    recent = _delivery(session, hook, days_ago=3, status=DeliveryStatus.succeeded)
    session.commit()
    gone = {old_ok.id, old_failed.id}
    keep = {old_pending.id, recent.id}
    assert webhook_history.prune(session, now=NOW) == 2
    left = set(session.scalars(select(WebhookDelivery.id)))
    assert left == keep and gone.isdisjoint(left)
    assert _count(session, WebhookAttempt) == 2
    # the latest delivery of a webhook stays, however old: its list shows the last status
    session.query(WebhookDelivery).delete()
    session.commit()
    only = _delivery(session, hook, days_ago=400, status=DeliveryStatus.failed)
    session.commit()
    assert webhook_history.prune(session, now=NOW) == 0
    assert list(session.scalars(select(WebhookDelivery.id))) == [only.id]


def test_notifications_read_long_ago_go_unread_ones_stay(session, make_user):
    person = make_user("viewer")
    for read_days_ago in (None, 200, 91, 10):
        event = OutboxEvent(id=uuid.uuid4(), kind="import_failed", subject="s", body="", payload={},
                            created_at=NOW, attempts=0)
        session.add(event)
        session.flush()
        session.add(Notification(user_id=person.id, event_id=event.id, kind="import_failed",
                                 severity=EventSeverity.high, subject="s", created_at=NOW - timedelta(days=300),
                                 read_at=None if read_days_ago is None else NOW - timedelta(days=read_days_ago)))
    session.commit()
    assert notifications.prune(session, now=NOW) == 2
    session.expire_all()
    assert sorted((n.read_at is None) for n in session.scalars(select(Notification))) == [False, True]


def test_maintenance_reports_what_it_pruned(session):
    result = maintenance.run(session, Actor.system("test"))
    assert (result.deliveries_pruned, result.notifications_pruned) == (0, 0)
