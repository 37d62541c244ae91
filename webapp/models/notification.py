"""In-app notifications and each person's notification preferences (SPEC §13).

The dispatcher turns one outbox event into one `Notification` per person it is for (never two:
unique per person and event), in one INSERT … SELECT; the bell counts a person's unread ones.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, BigIntPK, str_enum, utcnow
from webapp.models.outbox import EventSeverity


class EmailMode(enum.StrEnum):
    digest = "digest"  # one e-mail a day with the unread notifications since the last one
    immediate = "immediate"  # one e-mail per notification, sent by the dispatcher


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "event_id", name="uq_notifications_user_id_event_id"),
        # the bell: a person's unread count
        Index("ix_notifications_user_id_read_at", "user_id", "read_at"),
        # /notifications: a person's newest first (keyset on id)
        Index("ix_notifications_user_id_id", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[EventSeverity] = mapped_column(str_enum(EventSeverity, 16))
    subject: Mapped[str] = mapped_column(String(300))
    link: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    # an immediate e-mail is owed for it (the person chose immediate e-mail when it arrived);
    # cleared when sent, so a failed send is retried by the next dispatch
    mail_pending: Mapped[bool] = mapped_column(default=False, server_default=false())


class NotificationPreference(Base):
    """One row per person who changed the defaults (no row: every kind, from `info`, e-mail on,
    daily digest). Kinds are stored as the ones turned *off*, so a kind added later reaches
    everyone until they turn it off."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    muted_kinds: Mapped[list[str]] = mapped_column(default=list)
    min_severity: Mapped[EventSeverity] = mapped_column(str_enum(EventSeverity, 16), default=EventSeverity.info)
    email: Mapped[bool] = mapped_column(default=True)
    email_mode: Mapped[EmailMode] = mapped_column(str_enum(EmailMode, 16), default=EmailMode.digest)
    # when this person's last digest was sent: the next covers what arrived since
    last_digest_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
