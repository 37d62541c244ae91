"""The transactional outbox (SPEC §10, §13): one row per event that must reach someone, written
in the same transaction as the change that caused it, by the service that makes the change.

A dispatcher job turns each undispatched row into in-app notifications, e-mails and webhook
deliveries; a crash between the change and the send loses nothing (the row stays undispatched),
and Redis being down only delays it (the scheduler's sweep picks it up).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, JSONType, UUIDPrimaryKey, str_enum, utcnow
from webapp.models.enums import Role


class EventSeverity(enum.StrEnum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return list(EventSeverity).index(self)


class OutboxEvent(UUIDPrimaryKey, Base):
    __tablename__ = "outbox"
    __table_args__ = (
        # the dispatcher's scan: undispatched events, oldest first
        Index("ix_outbox_pending", "dispatched_at", "created_at"),
    )

    kind: Mapped[str] = mapped_column(String(64), index=True)  # services/outbox.py KINDS
    severity: Mapped[EventSeverity] = mapped_column(str_enum(EventSeverity, 16),
                                                    default=EventSeverity.info)
    subject: Mapped[str] = mapped_column(String(300))  # one line a person reads
    body: Mapped[str] = mapped_column(Text, default="")  # plain text, may be several lines
    link: Mapped[str | None] = mapped_column(String(500))  # app-relative path: /imports/<id>
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # the webhook body's data
    # who it is for: one person (recipient_id), or everyone of at least min_role
    recipient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    min_role: Mapped[Role] = mapped_column(str_enum(Role, 16), default=Role.viewer)
    # an event already raised under this key is not raised again (one "review items waiting"
    # per hour, one "exception expiring" per exception)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
