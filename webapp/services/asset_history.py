"""An asset's history: its audit events, newest first, a page at a time (SPEC §5: the newest 50
first and older on demand, at any event count: one index range read of
`ix_audit_events_entity` per page)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import AuditEvent

ENTITY = "asset"
PAGE = 50


def events(
    session: Session, asset_id: uuid.UUID, limit: int = 500, before_id: int | None = None
) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(
        AuditEvent.entity_type == ENTITY, AuditEvent.entity_id == str(asset_id)
    )
    if before_id is not None:
        stmt = stmt.where(AuditEvent.id < before_id)
    return list(session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit)))


def page(session: Session, asset_id: uuid.UUID, before_id: int | None = None) -> tuple[list[AuditEvent], int | None]:
    """The PAGE events before `before_id` (the newest without it), and the id to ask for the
    next older page with (None when these are the oldest)."""
    found = events(session, asset_id, limit=PAGE + 1, before_id=before_id)
    if len(found) > PAGE:
        return found[:PAGE], found[PAGE - 1].id
    return found, None
