"""An asset's history: its audit events, newest first."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import AuditEvent

ENTITY = "asset"


def events(session: Session, asset_id: uuid.UUID, limit: int = 500) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == ENTITY, AuditEvent.entity_id == str(asset_id))
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
    )
