"""Webhooks (SPEC §13): receivers an admin registers, one delivery per (webhook, event), and every
attempt made to deliver it.

A delivery's `id` is what the receiver sees as `X-Inventory-Delivery`: the same on every retry
and redelivery, so a receiver drops repeats. `body` is the exact JSON text sent (and signed), so
a redelivery sends the same bytes.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, BigIntPK, Timestamps, UUIDPrimaryKey, str_enum, utcnow


class DeliveryStatus(enum.StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


class Webhook(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "webhooks"

    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(2000))
    # the HMAC secret, encrypted with the app's MultiFernet (services/crypto.py) like connection
    # strings; shown once when created or regenerated, never again
    secret_encrypted: Mapped[str] = mapped_column(Text)
    kinds: Mapped[list[str]] = mapped_column(default=list)  # outbox KINDS this webhook receives
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class WebhookDelivery(UUIDPrimaryKey, Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # fan_out runs again for an event only if the dispatcher retried it: no second delivery
        UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_webhook_event"),
        # send_due's scan: pending deliveries whose next attempt is due
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        # a webhook's deliveries page, newest first
        Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at"),
    )

    webhook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    # the outbox event delivered (no foreign key: a test delivery's event is not in the outbox,
    # and the outbox may be pruned before its deliveries are)
    event_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[DeliveryStatus] = mapped_column(str_enum(DeliveryStatus, 16), default=DeliveryStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # in the current round (reset on redeliver)
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    response_excerpt: Mapped[str | None] = mapped_column(Text)  # the response's first 500 bytes
    error: Mapped[str | None] = mapped_column(Text)  # refused / timeout / connection closed …


__all__ = ["DeliveryStatus", "Webhook", "WebhookAttempt", "WebhookDelivery"]
