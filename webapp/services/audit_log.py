"""Reading the audit log with filters, newest first, keyset-paginated on id (`services/listing`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import AuditAction, AuditEvent
from webapp.services import listing

@dataclass
class AuditQuery:
    actor: str | None = listing.arg(listing.Search(lower=True))
    action: str | None = listing.arg(listing.Choice([a.value for a in AuditAction],
                                                    message="Unknown action."))
    entity_type: str | None = listing.arg(listing.Search(50))
    entity_id: str | None = listing.arg(listing.Search())
    since: datetime | None = listing.arg(listing.Day())
    until: datetime | None = listing.arg(listing.Day(end=True))
    # the page position, an event id (written as a number in the page's links)
    before_id: int | None = listing.arg(listing.Whole(1, listing.BIGINT_MAX,
                                                      message="Enter a whole number."),
                                        name="before")
    limit: int = listing.arg(listing.Whole(1, 500), default=50)


def parse_query(args: Mapping[str, Any], max_limit: int = 500) -> AuditQuery:
    limit = listing.Whole(1, max_limit, message=f"Enter a number from 1 to {max_limit}.")
    return listing.parse(AuditQuery, args, params={"limit": limit})


def events(session: Session, query: AuditQuery) -> tuple[list[AuditEvent], str | None]:
    """A page of events and the cursor to continue before (None on the last page)."""
    stmt = select(AuditEvent)
    if query.actor:
        stmt = stmt.where(AuditEvent.actor_label.contains(query.actor, autoescape=True))
    if query.action:
        stmt = stmt.where(AuditEvent.action == query.action)
    if query.entity_type:
        stmt = stmt.where(AuditEvent.entity_type == query.entity_type)
    if query.entity_id:
        stmt = stmt.where(AuditEvent.entity_id == query.entity_id)
    if query.since:
        stmt = stmt.where(AuditEvent.occurred_at >= query.since)
    if query.until:
        stmt = stmt.where(AuditEvent.occurred_at <= query.until)
    position = (query.before_id,) if query.before_id else None
    stmt = listing.keyset(stmt, (AuditEvent.id,), descending=True, limit=query.limit,
                          position=position)
    page = listing.page(list(session.scalars(stmt)), limit=query.limit, key=lambda e: (e.id,))
    return page.items, page.next_cursor
