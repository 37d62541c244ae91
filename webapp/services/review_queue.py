"""Reading the review queue (SPEC §3 "Conflict", §5 `/conflicts`): one keyset page of items
with its filters and cursor, one item, the open count and an item's neighbours in the queue.
Resolving the items is `webapp/services/conflicts.py`, which re-exports these names.

    page = review_queue.list_conflicts(session, status=ConflictStatus.open, kind=None)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from webapp.models import Asset, Conflict, ConflictKind, ConflictStatus, ImportRun, Role
from webapp.services import cached_counts, listing, outbox
from webapp.services.errors import NotFound, ValidationFailed

LIMIT_MAX = 200


@dataclass(frozen=True)
class QueueRow:
    """One line of the queue: the item, its candidate's name and its import's number, read in
    the same query (no lookup per row)."""

    conflict: Conflict
    candidate_name: str | None
    duplicate_name: str | None
    run_number: int | None


@dataclass
class ConflictPage:
    items: list[QueueRow]
    next_cursor: str | None


def _uuid(value: uuid.UUID | str, what: str = "item") -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"No such review {what}.") from None


def encode_cursor(conflict: Conflict) -> str:
    return listing.encode_cursor(conflict.created_at, conflict.id)


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """A page position from a URL: (created_at, id); 422 when it is not one of ours."""
    created, row_id = listing.decode_cursor(cursor, listing.MOMENT, listing.ID)
    return created, row_id


def list_conflicts(
    session: Session,
    *,
    status: ConflictStatus | None = ConflictStatus.open,
    kind: ConflictKind | None = None,
    import_run_id: uuid.UUID | None = None,
    min_confidence: float | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> ConflictPage:
    """Review items, newest first, one keyset page (`cursor`: the previous page's
    `next_cursor`). `status=None` lists every status."""
    if not 1 <= limit <= LIMIT_MAX:
        raise ValidationFailed({"limit": f"Enter a number from 1 to {LIMIT_MAX}."})
    if min_confidence is not None and not 0 <= min_confidence <= 1:
        raise ValidationFailed({"min_confidence": "Enter a number between 0 and 1."})
    candidate, duplicate = aliased(Asset), aliased(Asset)
    stmt = (
        select(Conflict, candidate.name, duplicate.name, ImportRun.number)
        .outerjoin(candidate, candidate.id == Conflict.candidate_id)
        .outerjoin(duplicate, duplicate.id == Conflict.duplicate_id)
        .outerjoin(ImportRun, ImportRun.id == Conflict.import_run_id)
    )
    stmt = stmt.where(*_narrowing(status, kind, import_run_id, min_confidence))
    stmt = listing.keyset(stmt, (Conflict.created_at, Conflict.id), descending=True, limit=limit,
                          position=decode_cursor(cursor) if cursor else None)
    rows = [QueueRow(c, cand, dup, number) for c, cand, dup, number in session.execute(stmt)]
    page = listing.page(rows, limit=limit, key=lambda row: (row.conflict.created_at, row.conflict.id))
    return ConflictPage(page.items, page.next_cursor)


def _narrowing(status: ConflictStatus | None, kind: ConflictKind | None,
               import_run_id: uuid.UUID | None, min_confidence: float | None) -> list[Any]:
    """The queue's filters as conditions (the list and an item's neighbours share them)."""
    conditions: list[Any] = []
    if status is not None:
        conditions.append(Conflict.status == status)
    if kind is not None:
        conditions.append(Conflict.kind == kind)
    if import_run_id is not None:
        conditions.append(Conflict.import_run_id == import_run_id)
    if min_confidence is not None:
        conditions.append(Conflict.confidence >= min_confidence)
    return conditions


def get(session: Session, conflict_id: uuid.UUID | str) -> Conflict:
    conflict = session.get(Conflict, _uuid(conflict_id))
    if conflict is None:
        raise NotFound("No such review item.")
    return conflict


def open_count(session: Session) -> int:
    """How many items wait for a reviewer."""
    return session.scalar(
        select(func.count()).select_from(Conflict).where(Conflict.status == ConflictStatus.open)
    ) or 0


def cached_open_count(session: Session) -> int:
    """`open_count` from the counts cache, until a commit writes review items (see
    `cached_counts`): the navigation's count on every page."""
    return cached_counts.read("open_conflicts", ("conflicts",), lambda: open_count(session))


def announce_waiting(session: Session, now: datetime) -> None:
    """Raise `review_waiting` for reviewers, in the caller's transaction, after new items were
    added: at most one per hour (dedupe key `review_waiting:<hour>`), with the open count."""
    hour = now.strftime("%Y-%m-%dT%H")
    event = outbox.emit(session, "review_waiting", subject="Review items are waiting",
                        link="/conflicts", min_role=Role.reviewer, dedupe_key=f"review_waiting:{hour}")
    if event is None:
        return
    count = open_count(session)
    event.subject = f"{count} review item{'s' if count != 1 else ''} waiting"
    event.body = "Imports flagged records a reviewer must decide about (possible duplicates, field conflicts)."
    event.payload = {"open": count, "hour": hour}


def run_by_number(session: Session, number: int) -> ImportRun | None:
    return session.scalar(select(ImportRun).where(ImportRun.number == number))


@dataclass(frozen=True)
class Neighbours:
    """The open items around one in queue order (newest first): `previous` is newer, `next`
    older."""

    previous: uuid.UUID | None
    next: uuid.UUID | None

    @property
    def after_resolving(self) -> uuid.UUID | None:
        """Where a reviewer goes once this item is resolved: on down the queue, else back up."""
        return self.next or self.previous


def neighbours(
    session: Session,
    conflict: Conflict,
    *,
    status: ConflictStatus | None = ConflictStatus.open,
    kind: ConflictKind | None = None,
    import_run_id: uuid.UUID | None = None,
    min_confidence: float | None = None,
) -> Neighbours:
    """The previous and next items around `conflict` within the queue's filters (by default:
    the open items), in one query: `Next` on an item stays in the list it came from."""
    newer = or_(Conflict.created_at > conflict.created_at,
                and_(Conflict.created_at == conflict.created_at, Conflict.id > conflict.id))
    older = or_(Conflict.created_at < conflict.created_at,
                and_(Conflict.created_at == conflict.created_at, Conflict.id < conflict.id))
    within = _narrowing(status, kind, import_run_id, min_confidence)
    previous = (select(Conflict.id).where(*within, newer)
                .order_by(Conflict.created_at.asc(), Conflict.id.asc()).limit(1))
    following = (select(Conflict.id).where(*within, older)
                 .order_by(Conflict.created_at.desc(), Conflict.id.desc()).limit(1))
    row = session.execute(select(previous.scalar_subquery(), following.scalar_subquery())).one()
    return Neighbours(row[0], row[1])


def why_not_merged(conflict: Conflict, auto_merge: float) -> str | None:
    """Why an import sent this incoming record to a reviewer instead of merging it (SPEC §6):
    which evidence was missing. None for items that are not an incoming possible duplicate."""
    if conflict.kind != ConflictKind.possible_duplicate or conflict.duplicate_id is not None:
        return None
    if conflict.incoming is None or not conflict.import_run_id:
        return None
    reasons = [r.lower() for r in conflict.reasons or []]
    if any(r.startswith("ambiguous") for r in reasons):
        return ("The record's endpoint matches more than one asset, and nothing in it says "
                "which one it is: a reviewer picks.")
    strong = any(r.startswith(("same cloud_resource_id", "same host:port", "same host and database"))
                 for r in reasons)
    if conflict.confidence >= auto_merge and not strong:
        return (f"It scored {conflict.confidence:.0%}, above the auto-merge threshold "
                f"({auto_merge:.0%}), but without a strong identifier: neither the same cloud "
                "resource id nor the same host and port (or host and database). Similar names "
                "and fields alone never merge.")
    if conflict.confidence < auto_merge:
        return (f"It scored {conflict.confidence:.0%}, below the auto-merge threshold "
                f"({auto_merge:.0%}).")
    return None
