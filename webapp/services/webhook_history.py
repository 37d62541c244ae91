"""The webhooks' record (SPEC §13): each webhook with its newest delivery's status, a webhook's
deliveries with every attempt (the admin pages and the API read these), and pruning that record
(the maintenance task). Sending lives in `services/webhooks.py`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete as delete_
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.models.base import utcnow
from webapp.models.webhook import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery
from webapp.services.webhooks import get

KEEP_DAYS = 30  # finished deliveries older than this are pruned by maintenance (the latest kept)


# --- reading ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Listed:
    webhook: Webhook
    last_status: DeliveryStatus | None
    last_at: datetime | None


def list_webhooks(session: Session) -> list[Listed]:
    """Every webhook by name, with its newest delivery's status (one statement)."""
    newest = (
        select(WebhookDelivery.webhook_id, WebhookDelivery.status, WebhookDelivery.created_at,
               func.row_number().over(partition_by=WebhookDelivery.webhook_id,
                                      order_by=(WebhookDelivery.created_at.desc(),
                                                WebhookDelivery.id.desc())).label("n"))
        .subquery()
    )
    rows = session.execute(
        select(Webhook, newest.c.status, newest.c.created_at)
        .outerjoin(newest, (newest.c.webhook_id == Webhook.id) & (newest.c.n == 1))
        .order_by(func.lower(Webhook.name), Webhook.id)
    ).all()
    return [Listed(w, DeliveryStatus(s) if s else None, at) for w, s, at in rows]


@dataclass(frozen=True)
class DeliveryView:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]


def deliveries(session: Session, webhook_id: uuid.UUID | str, *, limit: int = 50,
               before: datetime | None = None) -> list[DeliveryView]:
    """A webhook's deliveries, newest first, each with its attempts (two statements)."""
    webhook = get(session, webhook_id)
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
    if before is not None:
        query = query.where(WebhookDelivery.created_at < before)
    rows = list(session.scalars(
        query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit)))
    by_delivery: dict[uuid.UUID, list[WebhookAttempt]] = {d.id: [] for d in rows}
    if rows:
        for attempt in session.scalars(select(WebhookAttempt).where(
                WebhookAttempt.delivery_id.in_(list(by_delivery))).order_by(WebhookAttempt.id)):
            by_delivery[attempt.delivery_id].append(attempt)
    return [DeliveryView(d, by_delivery[d.id]) for d in rows]



def prune(session: Session, *, keep_days: int = KEEP_DAYS, now: datetime | None = None) -> int:
    """Delete finished deliveries (and their attempts) older than `keep_days`, keeping each
    webhook's latest (its list's "last delivery"); pending ones are never pruned. Returns how
    many deliveries went. Run by the maintenance task."""
    cutoff = (now or utcnow()) - timedelta(days=keep_days)
    newest = (select(WebhookDelivery.webhook_id, func.max(WebhookDelivery.created_at).label("created_at"))
              .group_by(WebhookDelivery.webhook_id).subquery())
    keep = select(WebhookDelivery.id).join(
        newest, (WebhookDelivery.webhook_id == newest.c.webhook_id)
        & (WebhookDelivery.created_at == newest.c.created_at))
    old = (select(WebhookDelivery.id)
           .where(WebhookDelivery.status != DeliveryStatus.pending,
                  WebhookDelivery.created_at < cutoff, WebhookDelivery.id.not_in(keep)))
    # the attempts first: SQLite does not enforce the cascade
    session.execute(delete_(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(old))
                    .execution_options(synchronize_session=False))
    pruned = session.execute(delete_(WebhookDelivery).where(WebhookDelivery.id.in_(old))
                             .execution_options(synchronize_session=False)).rowcount
    session.commit()
    return pruned or 0
