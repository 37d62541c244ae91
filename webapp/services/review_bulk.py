"""Bulk resolution of review items (SPEC §5, the queue's keyboard flow): many items, one action,
the default field choices, as one change set of kind `review` whose every audit event carries its
id; and its undo, which reopens what was dismissed and reports, not pretends, the rest.

    result = review_bulk.bulk_resolve(session, actor, ids, "dismiss")   # BulkResolution
    review_bulk.reopen(session, actor, result.change_set_id, change_set_id=undo.id)
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from webapp.models import (
    Asset,
    AuditAction,
    AuditEvent,
    ChangeSet,
    ChangeSetKind,
    ChangeSetStatus,
    Conflict,
    ConflictStatus,
    ImportRun,
)
from webapp.models.base import utcnow
from webapp.services import audit
from webapp.services.actor import Actor
from webapp.services.conflicts import ACTIONS, BULK_MAX, ENTITY, _locked, _resolve
from webapp.services.errors import DomainError, InvalidState, ValidationFailed
from webapp.services.review_queue import QueueRow


@dataclass(frozen=True)
class BulkOutcome:
    id: str
    label: str  # the record key, or a short id: how a reviewer recognises the item
    resolved: bool
    status: str | None = None  # the new status when resolved
    reason: str | None = None  # why it was refused


@dataclass
class BulkResolution:
    """What a bulk resolution did: one outcome per item, and the change set that holds it
    (`number`; `undoable`: how many of its items `Undo` can reopen)."""

    outcomes: list[BulkOutcome]
    change_set_id: uuid.UUID | None = None
    number: int | None = None

    def __iter__(self) -> Iterator[BulkOutcome]:
        return iter(self.outcomes)

    @property
    def resolved(self) -> list[BulkOutcome]:
        return [o for o in self.outcomes if o.resolved]

    @property
    def refused(self) -> list[BulkOutcome]:
        return [o for o in self.outcomes if not o.resolved]

    @property
    def undoable(self) -> int:
        return sum(1 for o in self.resolved if o.status in UNDOABLE)


# what `Undo` can put back honestly: a dismissal changed nothing but the item. A merge or a
# created asset changed assets (fields, a merged-away asset, moved sightings and links): those
# are undone from the asset's history, not by reopening the item (docs/decisions.md).
UNDOABLE = (ConflictStatus.dismissed.value,)


def check_bulk(ids: Iterable[uuid.UUID | str], action: str) -> list[str]:
    """The selection of a bulk resolution, checked (ValidationFailed, 422): the ids once each."""
    if action not in ACTIONS:
        raise ValidationFailed({"action": "Choose merge, create or dismiss."})
    unique = list(dict.fromkeys(str(i).strip() for i in ids if str(i).strip()))
    if not unique:
        raise ValidationFailed({"ids": "Select at least one item."})
    if len(unique) > BULK_MAX:
        raise ValidationFailed({"ids": f"Select at most {BULK_MAX} items at a time."})
    for item in unique:
        try:
            uuid.UUID(item)
        except ValueError:
            raise ValidationFailed({"ids": "The selection holds something that is not a review item; "
                                           "select the items again."}) from None
    return unique


def selected(session: Session, ids: Iterable[str]) -> list[QueueRow]:
    """The selected items as queue rows (one query), for the confirmation; unknown ids are
    left out (the resolution reports them)."""
    keys = []
    for item in ids:
        try:
            keys.append(uuid.UUID(item))
        except ValueError:
            continue
    if not keys:
        return []
    candidate, duplicate = aliased(Asset), aliased(Asset)
    rows = session.execute(
        select(Conflict, candidate.name, duplicate.name, ImportRun.number)
        .outerjoin(candidate, candidate.id == Conflict.candidate_id)
        .outerjoin(duplicate, duplicate.id == Conflict.duplicate_id)
        .outerjoin(ImportRun, ImportRun.id == Conflict.import_run_id)
        .where(Conflict.id.in_(keys))
        .order_by(Conflict.created_at.desc(), Conflict.id.desc())
    )
    return [QueueRow(c, cand, dup, number) for c, cand, dup, number in rows]


def bulk_resolve(
    session: Session, actor: Actor, ids: Iterable[uuid.UUID | str], action: str
) -> BulkResolution:
    """Resolve many items with the same action and the default field choices, as one change
    set (kind `review`): every audit event it writes carries its id. Each item is its own
    savepoint: one refused item (already resolved, not applicable, its asset gone) is reported
    with the reason and the others still go through, in one transaction."""
    unique = check_bulk(ids, action)
    change_set = _begin_review(session, actor, action, unique)
    change_set_id, number = change_set.id, change_set.number
    actor = dataclasses.replace(actor, change_set_id=change_set_id)
    outcomes: list[BulkOutcome] = []
    try:
        for item in unique:
            try:
                with session.begin_nested():
                    conflict = _resolve(session, actor, item, action, None, ConflictStatus.open)
                    session.flush()
            except IntegrityError as exc:
                reason = ("Another asset already has this cloud resource id."
                          if "cloud_resource_id" in str(exc.orig) else "The database refused it.")
                outcomes.append(BulkOutcome(item, _label(session, item), False, reason=reason))
            except ValidationFailed as exc:
                reason = " ".join(exc.errors.values()) or exc.message
                outcomes.append(BulkOutcome(item, _label(session, item), False, reason=reason))
            except DomainError as exc:
                outcomes.append(BulkOutcome(item, _label(session, item), False, reason=exc.message))
            else:
                outcomes.append(BulkOutcome(item, _label(session, item), True,
                                            status=conflict.status.value))
        done = sum(1 for o in outcomes if o.resolved)
        session.execute(
            update(ChangeSet).where(ChangeSet.id == change_set_id)
            .values(status=ChangeSetStatus.succeeded, changed=done, refused=len(outcomes) - done,
                    processed=len(outcomes), finished_at=utcnow(), heartbeat_at=utcnow(),
                    reported=[{"asset_id": None, "name": o.label, "reason": o.reason}
                              for o in outcomes if not o.resolved][:50])
            .execution_options(synchronize_session=False)
        )
        session.commit()
    except Exception:
        session.rollback()
        session.execute(update(ChangeSet).where(ChangeSet.id == change_set_id).values(
            status=ChangeSetStatus.failed, finished_at=utcnow(),
            error="The resolution failed; nothing was changed.").execution_options(synchronize_session=False))
        session.commit()
        raise
    return BulkResolution(outcomes, change_set_id, number)


def _begin_review(session: Session, actor: Actor, action: str, ids: list[str]) -> ChangeSet:
    """The change set of a bulk resolution, numbered and `running` (committed, as an import's
    is: the resolution then writes under its id)."""
    for _attempt in range(5):
        now = utcnow()
        change_set = ChangeSet(
            id=uuid.uuid4(), kind=ChangeSetKind.review, status=ChangeSetStatus.running,
            selection={"conflicts": ids}, params={"review": action, "items": len(ids)}, preview={},
            reported=[], matched=len(ids), total=len(ids), runner="inline", started_at=now,
            heartbeat_at=now, actor_id=actor.user_id, actor_label=actor.label[:300], ip=actor.ip,
            user_agent=(actor.user_agent or None) and actor.user_agent[:500],
            request_id=actor.request_id,
        )
        try:
            session.add(change_set)
            session.flush()
            session.execute(
                update(ChangeSet).where(ChangeSet.id == change_set.id).values(
                    number=ChangeSet.next_number())
                .execution_options(synchronize_session=False))
            session.commit()
        except IntegrityError:  # another change set took the number: take the next
            session.rollback()
            continue
        session.refresh(change_set)
        return change_set
    raise InvalidState("Could not number the change set; try again.")


def reopen(session: Session, actor: Actor, original_id: uuid.UUID, *,
           change_set_id: uuid.UUID) -> tuple[int, list[dict[str, Any]]]:
    """Undo a bulk resolution (change set `original_id`), in the caller's transaction: each
    item it dismissed and that is still dismissed is open again (one `undo` event each, under
    `change_set_id`). Items it merged or created an asset for stay resolved, reported with
    why (their asset changes are undone from the asset's history). Returns (reopened, the
    items left as they are: {"asset_id", "name", "reason"})."""
    events = list(session.execute(
        select(AuditEvent.entity_id)
        .where(AuditEvent.change_set_id == original_id, AuditEvent.entity_type == ENTITY,
               AuditEvent.action == AuditAction.resolve)
        .order_by(AuditEvent.id)
    ).scalars())
    reopened, left = 0, []
    for entity_id in dict.fromkeys(events):
        conflict = _locked(session, entity_id)
        label = conflict.record_key or f"item {str(conflict.id)[:8]}"
        why = None
        if conflict.status == ConflictStatus.merged:
            why = "Merged: a merge changed assets and is not undone here; revert it from the asset's History."
        elif conflict.status == ConflictStatus.created:
            why = "A new asset was created: it is not removed here; move it to the trash from its page."
        elif conflict.status != ConflictStatus.dismissed:
            why = "It was reopened or resolved again since."
        if why:
            left.append({"asset_id": str(conflict.candidate_id) if conflict.candidate_id else None,
                         "name": label, "reason": why})
            continue
        before = conflict.resolution
        conflict.status = ConflictStatus.open
        conflict.resolution = None
        conflict.result_asset_id = None
        conflict.resolved_by = None
        conflict.resolved_at = None
        session.flush()
        audit.record(session, actor, AuditAction.undo, ENTITY, conflict.id, {
            "status": [ConflictStatus.dismissed.value, ConflictStatus.open.value],
            "resolution": [before, None],
        }, message=f"reopened: {label}", change_set_id=change_set_id)
        reopened += 1
    return reopened, left


def _label(session: Session, item: str) -> str:
    try:
        conflict = session.get(Conflict, uuid.UUID(item))
    except ValueError:
        conflict = None
    if conflict is not None and conflict.record_key:
        return conflict.record_key
    return f"item {item[:8]}"
