"""Reading the audit log with filters, newest first, keyset-paginated on id (`services/listing`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.models import Asset, AuditAction, AuditEvent, User
from webapp.services import listing

NAMED_MAX = 100  # assets of one name the Entity filter looks for (names need not be unique)

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
        stmt = stmt.where(AuditEvent.entity_id.in_(entity_ids(session, query.entity_id)))
    if query.since:
        stmt = stmt.where(AuditEvent.occurred_at >= query.since)
    if query.until:
        stmt = stmt.where(AuditEvent.occurred_at <= query.until)
    position = (query.before_id,) if query.before_id else None
    stmt = listing.keyset(stmt, (AuditEvent.id,), descending=True, limit=query.limit,
                          position=position)
    page = listing.page(list(session.scalars(stmt)), limit=query.limit, key=lambda e: (e.id,))
    return page.items, page.next_cursor


def entity_ids(session: Session, text: str) -> list[str]:
    """What the Entity filter means: an id as it is, or a name: the ids of the assets of that
    name (any case, the trash included) and of the user with that email."""
    try:
        return [str(uuid.UUID(text))]
    except ValueError:
        pass
    users = select(User.id).where(func.lower(User.email) == text.lower())
    exact = select(Asset.id).where(Asset.name == text).limit(NAMED_MAX)  # the name index
    found = list(session.scalars(exact.union_all(users)))
    if not found:  # typed in another case: a scan, only when the exact name is not there
        found = list(session.scalars(
            select(Asset.id).where(func.lower(Asset.name) == text.lower()).limit(NAMED_MAX)))
    return [text, *(str(i) for i in found)]


def entity_names(session: Session, events: Iterable[AuditEvent]) -> dict[str, str]:
    """{entity id: name} of the assets and users the events are about (one query; a purged
    asset has no name left)."""
    ids: dict[str, set[uuid.UUID]] = {"asset": set(), "user": set()}
    for event in events:
        if event.entity_type in ids and event.entity_id:
            try:
                ids[event.entity_type].add(uuid.UUID(event.entity_id))
            except ValueError:
                continue
    if not (ids["asset"] or ids["user"]):
        return {}
    stmt = select(Asset.id, Asset.name).where(Asset.id.in_(ids["asset"])).union_all(
        select(User.id, User.email).where(User.id.in_(ids["user"])))
    return {str(i): name for i, name in session.execute(stmt)}
