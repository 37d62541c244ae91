"""Reading the audit log with filters, newest first, keyset-paginated on id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import AuditAction, AuditEvent
from webapp.services.errors import ValidationFailed


@dataclass
class AuditQuery:
    actor: str | None = None
    action: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    limit: int = 50


def _day(value: str, field: str, end: bool) -> datetime:
    try:
        day = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed({field: "Enter a date as YYYY-MM-DD."}) from None
    if day.tzinfo is None:
        day = datetime.combine(day.date(), time.max if end else time.min, tzinfo=UTC)
    return day


def parse_query(args: dict[str, str], max_limit: int = 500) -> AuditQuery:
    query = AuditQuery()
    errors: dict[str, str] = {}
    query.actor = (args.get("actor") or "").strip().lower() or None
    action = args.get("action") or None
    if action and action not in {a.value for a in AuditAction}:
        errors["action"] = "Unknown action."
    query.action = action
    query.entity_type = args.get("entity_type") or None
    query.entity_id = (args.get("entity_id") or "").strip() or None
    try:
        if args.get("since"):
            query.since = _day(args["since"], "since", end=False)
        if args.get("until"):
            query.until = _day(args["until"], "until", end=True)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    for name, attr in (("before", "before_id"), ("limit", "limit")):
        if args.get(name):
            try:
                setattr(query, attr, int(args[name]))
            except ValueError:
                errors[name] = "Enter a whole number."
    if query.before_id is not None and not 0 < query.before_id < 2**63:
        errors["before"] = "Use the link to the next page."
    if not 1 <= query.limit <= max_limit:
        errors["limit"] = f"Enter a number from 1 to {max_limit}."
    if errors:
        raise ValidationFailed(errors, "Some filters are not valid.")
    return query


def events(session: Session, query: AuditQuery) -> tuple[list[AuditEvent], int | None]:
    """A page of events and the id to continue before (None on the last page)."""
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
    if query.before_id:
        stmt = stmt.where(AuditEvent.id < query.before_id)
    rows = list(session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(query.limit + 1)))
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return rows, (rows[-1].id if more and rows else None)
