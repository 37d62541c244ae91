"""An asset's history: its audit events, newest first."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import AuditEvent

ENTITY = "asset"


def events(
    session: Session, asset_id: uuid.UUID, limit: int = 500, before_id: int | None = None
) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(
        AuditEvent.entity_type == ENTITY, AuditEvent.entity_id == str(asset_id)
    )
    if before_id is not None:
        stmt = stmt.where(AuditEvent.id < before_id)
    return list(session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit)))
