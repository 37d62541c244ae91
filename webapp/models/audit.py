"""The append-only, hash-chained audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, BigIntPK, JSONType, str_enum, utcnow
from webapp.models.enums import AuditAction


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_entity", "entity_type", "entity_id", "id"),
        # the audit log filtered by entity id alone (`/audit`, `/api/v1/audit?entity_id=`):
        # the index above leads with the type, so without it the filter read the whole log
        Index("ix_audit_events_entity_id_id", "entity_id", "id"),
        Index("ix_audit_events_actor_id_id", "actor_id", "id"),
        Index("ix_audit_events_action_id", "action", "id"),
        # a change set's events in order (its page, its undo); most events belong to none
        Index("ix_audit_events_change_set_id_id", "change_set_id", "id",
              postgresql_where=text("change_set_id IS NOT NULL"),
              sqlite_where=text("change_set_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    actor_label: Mapped[str] = mapped_column(String(300))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    request_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[AuditAction] = mapped_column(str_enum(AuditAction))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    message: Mapped[str | None] = mapped_column(Text)
    # the bulk action, undo (or later import or load) that caused the event; null otherwise,
    # and then left out of the hashed payload, so events written before it existed still verify
    change_set_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("change_sets.id"))
    # unique: two events can never claim the same predecessor, so the chain cannot fork
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
