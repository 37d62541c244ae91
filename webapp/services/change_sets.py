"""Change sets (SPEC §3, §5, §7): bulk actions on many assets, previewed, applied as one unit,
and undone as one.

    selection = Selection.of_ids(["…", "…"])            # or Selection.of_filter(query, args)
    action = BulkAction.parse(set_values={"owner": "dba@example.com"})
    preview(session, selection, action)                  # counts and a sample; writes nothing
    cs = create(session, actor, selection, action)       # a preview: the selection is frozen
    cs = apply(session, actor, cs.id)                    # queued, numbered (`change set #N`)
    execute(session, cs.id)                              # what the job (or the request) runs
    undo_cs = undo(session, actor, cs.id)                # queued; `execute` it the same way

`Selection`, `BulkAction` and `preview` live in `services.bulk_actions` (re-exported here);
the batches in `services.change_set_batches`.

The `ChangeSet` row is the source of truth, as an `ImportRun` is for imports: `execute` claims
it (`queued` → `running`), applies its batches (`change_set_batches.apply_batch`: each batch
commits its asset rows with their audit events, every event carrying the change set's id),
moves its counts, progress and heartbeat after each batch, and ends it `succeeded` or `failed`.
A set of at most `INLINE_MAX` assets is applied in the request; a larger one by a job
(`webapp/jobs/change_sets.py`) — the callers choose with `runs_inline`.

An undo reads the audit events the change set wrote (one per asset: `{field: [before, after]}`
and `version`), so it puts back exactly what was changed, and refuses, listing them, the assets
whose version moved on since. An import run that carries a change set id on its events can be
undone the same way.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Uuid, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from webapp.models import (
    Asset,
    AuditAction,
    AuditEvent,
    ChangeSet,
    ChangeSetItem,
    ChangeSetKind,
    ChangeSetStatus,
)
from webapp.models.base import utcnow
from webapp.services import assets
from webapp.services.actor import Actor
from webapp.services.asset_validation import FIELDS, NOT_NULL_DEFAULTS
from webapp.services.bulk_actions import (  # noqa: F401 (re-exported: one module per area)
    IDS_MAX,
    SAMPLE_SIZE,
    SETTABLE,
    BulkAction,
    Preview,
    Selection,
    describe,
    preview,
)
from webapp.services.change_set_batches import (
    REPORTED_MAX,
    BatchResult,
    Step,
    Verdict,
    Wanted,
    apply_batch,
)
from webapp.services.errors import InvalidState, NotFound

log = logging.getLogger(__name__)

INLINE_MAX = 1_000  # a change set of at most this many assets is applied in the request
BATCH_SIZE = 5_000  # assets per committed batch
STALE_SECONDS = 300  # a running change set without a heartbeat this long is marked failed
PREVIEW_DAYS = 7  # previews nobody applied are discarded after this long (`flask maintenance`)


# --- creating, applying, undoing ----------------------------------------------------------------

def get(session: Session, change_set_id: uuid.UUID | str) -> ChangeSet:
    try:
        key = change_set_id if isinstance(change_set_id, uuid.UUID) else uuid.UUID(str(change_set_id))
    except ValueError:
        raise NotFound("No such change set.") from None
    change_set = session.get(ChangeSet, key)
    if change_set is None:
        raise NotFound("No such change set.")
    return change_set


def recent(session: Session, *, limit: int = 25, before_number: int | None = None) -> list[ChangeSet]:
    """Applied change sets, newest first (keyset on the number); previews are not listed."""
    stmt = select(ChangeSet).where(ChangeSet.number.is_not(None))
    if before_number is not None:
        stmt = stmt.where(ChangeSet.number < before_number)
    # what a list row does not show: a selection of ids can be long
    stmt = stmt.options(defer(ChangeSet.selection), defer(ChangeSet.preview), defer(ChangeSet.reported))
    return list(session.scalars(stmt.order_by(ChangeSet.number.desc()).limit(limit)))


def _actor_columns(actor: Actor) -> dict[str, Any]:
    return {"actor_id": actor.user_id, "actor_label": actor.label[:300], "ip": actor.ip,
            "user_agent": (actor.user_agent or None) and actor.user_agent[:500],
            "request_id": actor.request_id}


def actor_of(change_set: ChangeSet) -> Actor:
    """Who the change set's audit events name, wherever it runs."""
    return Actor(user_id=change_set.actor_id, label=change_set.actor_label, ip=change_set.ip,
                 user_agent=change_set.user_agent, request_id=change_set.request_id)


def create(session: Session, actor: Actor, selection: Selection, action: BulkAction) -> ChangeSet:
    """Preview `action` on `selection` and freeze the selection, each asset with its version:
    a `previewed` change set that `apply` runs. ValidationFailed when nothing is selected."""
    found = preview(session, selection, action)
    change_set = ChangeSet(
        id=uuid.uuid4(), kind=ChangeSetKind.bulk, status=ChangeSetStatus.previewed,
        selection=selection.stored(), params=action.params(), preview=found.as_dict(),
        reported=[], **_actor_columns(actor),
    )
    session.add(change_set)
    session.flush()
    frozen = selection.statement(session).with_only_columns(
        literal(change_set.id, Uuid()), Asset.id, Asset.version, maintain_column_froms=True
    ).order_by(None)
    session.execute(insert(ChangeSetItem.__table__).from_select(["change_set_id", "asset_id", "version"], frozen))
    # counted again (the driver does not report an INSERT … SELECT's rows): what was frozen
    change_set.matched = change_set.total = session.scalar(
        select(func.count()).select_from(ChangeSetItem).where(ChangeSetItem.change_set_id == change_set.id)) or 0
    session.commit()
    return change_set


def _next_number() -> Any:
    return select(func.coalesce(func.max(ChangeSet.number), 0) + 1).scalar_subquery()


def apply(session: Session, actor: Actor, change_set_id: uuid.UUID | str) -> ChangeSet:
    """Queue a previewed change set, numbered, acting as `actor`. InvalidState if it was
    applied already. The caller runs it: `execute` now (`runs_inline`) or a job."""
    change_set = get(session, change_set_id)
    for _attempt in range(5):
        if change_set.status is not ChangeSetStatus.previewed:
            raise InvalidState(f"This change was already applied ({change_set.label}).")
        try:
            claimed = session.execute(
                update(ChangeSet)
                .where(ChangeSet.id == change_set.id, ChangeSet.status == ChangeSetStatus.previewed)
                .values(status=ChangeSetStatus.queued, number=_next_number(), **_actor_columns(actor))
                .execution_options(synchronize_session=False)
            ).rowcount
            session.commit()
        except IntegrityError:  # another change set took the number: take the next
            session.rollback()
            session.refresh(change_set)
            continue
        session.refresh(change_set)
        if claimed:
            return change_set
    raise InvalidState("Could not number the change set; try again.")


def undo(session: Session, actor: Actor, change_set_id: uuid.UUID | str) -> ChangeSet:
    """Queue the reversal of an applied change set, as a change set of its own (kind `undo`).
    InvalidState when it is not finished, was undone already, or changed nothing."""
    original = get(session, change_set_id)
    for _attempt in range(5):
        if original.number is None or not original.status.finished:
            raise InvalidState("Only an applied change set that has finished can be undone.")
        if original.undone_by is not None:
            raise InvalidState(f"{original.label.capitalize()} was undone already; a change set is undone once.")
        total = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.change_set_id == original.id, AuditEvent.entity_type == "asset")) or 0
        if not total:
            raise InvalidState(f"{original.label.capitalize()} changed no asset: there is nothing to undo.")
        reverse_id = uuid.uuid4()
        try:
            session.add(ChangeSet(
                id=reverse_id, kind=ChangeSetKind.undo, status=ChangeSetStatus.queued,
                undo_of=original.id, selection={"change_set": str(original.id)},
                params={"undo": original.number}, preview={}, reported=[], matched=total, total=total,
                **_actor_columns(actor),
            ))
            session.flush()
            session.execute(update(ChangeSet).where(ChangeSet.id == reverse_id).values(number=_next_number())
                            .execution_options(synchronize_session=False))
            taken = session.execute(
                update(ChangeSet).where(ChangeSet.id == original.id, ChangeSet.undone_by.is_(None))
                .values(undone_by=reverse_id).execution_options(synchronize_session=False)
            ).rowcount
            if taken:
                session.commit()
                return get(session, reverse_id)
        except IntegrityError:  # a number taken meanwhile, or the same undo at the same time
            pass
        session.rollback()
        session.refresh(original)
    raise InvalidState("Could not start the undo; try again.")


def runs_inline(change_set: ChangeSet, inline_max: int = INLINE_MAX) -> bool:
    """Small change sets are applied in the request; larger ones by a job."""
    return change_set.total <= inline_max


# --- running ------------------------------------------------------------------------------------

def execute(session: Session, change_set_id: uuid.UUID | str, *, runner: str = "inline",
            batch_size: int = BATCH_SIZE) -> ChangeSet:
    """Apply a queued change set to its end in this process, batch by batch. One that is not
    queued (taken by another worker, finished) is left alone and returned as it is."""
    change_set = get(session, change_set_id)
    now = utcnow()
    claimed = session.execute(
        update(ChangeSet).where(ChangeSet.id == change_set.id, ChangeSet.status == ChangeSetStatus.queued)
        .values(status=ChangeSetStatus.running, started_at=now, heartbeat_at=now, runner=runner)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    if not claimed:
        return get(session, change_set.id)
    session.refresh(change_set)
    progress = _Progress(change_set.id, list(change_set.reported or []))
    actor = actor_of(change_set)
    try:
        with _few_collections():
            if change_set.kind is ChangeSetKind.undo:
                _run_undo(session, actor, change_set, batch_size, progress)
            else:
                _run_bulk(session, actor, change_set, batch_size, progress)
    except Exception as exc:
        session.rollback()
        log.exception("Change set %s failed", change_set.id)
        _finish(session, change_set.id, ChangeSetStatus.failed,
                f"Stopped after {progress.processed:,} assets: {type(exc).__name__}. The batches "
                "before it were applied; undo them, or make the change again.")
    else:
        _finish(session, change_set.id, ChangeSetStatus.succeeded)
    return get(session, change_set.id)


@contextlib.contextmanager
def _few_collections() -> Iterator[None]:
    """A batch allocates a few objects per asset that all live until it ends: the collector's
    frequent young-generation passes would scan them again and again (seconds per 100,000
    assets). Acyclic garbage is still freed at once by reference counting."""
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


@dataclass
class _Progress:
    change_set_id: uuid.UUID
    reported: list[dict[str, Any]]
    processed: int = 0

    def add(self, session: Session, result: BatchResult, steps: int) -> None:
        """Move the counts and progress by one batch's (in the batch's transaction)."""
        self.processed += steps
        values: dict[str, Any] = {
            name: getattr(ChangeSet, name) + getattr(result, name)
            for name in ("changed", "unchanged", "locked", "refused", "failed") if getattr(result, name)
        }
        if result.reported and len(self.reported) < REPORTED_MAX:
            self.reported = [*self.reported, *result.reported][:REPORTED_MAX]
            values["reported"] = self.reported
        session.execute(
            update(ChangeSet).where(ChangeSet.id == self.change_set_id)
            .values(processed=ChangeSet.processed + steps, heartbeat_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )


def _run_bulk(session: Session, actor: Actor, change_set: ChangeSet, batch_size: int,
              progress: _Progress) -> None:
    action = BulkAction.from_params(change_set.params)
    message = f"bulk change, {change_set.label}"
    change_set_id = change_set.id  # read once: every commit expires the row
    for items in _frozen(session, change_set_id, batch_size):
        steps = [Step(asset_id, version, action.plan) for asset_id, version in items]
        result = apply_batch(session, actor, change_set_id, steps, fields=action.fields,
                             since="the preview", message=message)
        progress.add(session, result, len(steps))
        session.commit()


def _frozen(session: Session, change_set_id: uuid.UUID, batch_size: int) -> Iterator[list[tuple[uuid.UUID, int]]]:
    """The frozen selection in batches (keyset on the asset id)."""
    last: uuid.UUID | None = None
    while True:
        stmt = select(ChangeSetItem.asset_id, ChangeSetItem.version).where(
            ChangeSetItem.change_set_id == change_set_id)
        if last is not None:
            stmt = stmt.where(ChangeSetItem.asset_id > last)
        rows = list(session.execute(stmt.order_by(ChangeSetItem.asset_id).limit(batch_size)).tuples())
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _run_undo(session: Session, actor: Actor, change_set: ChangeSet, batch_size: int,
              progress: _Progress) -> None:
    original_id, change_set_id = change_set.undo_of, change_set.id
    assert original_id is not None
    message = f"undo of change set #{change_set.params.get('undo')}"
    last = 0
    while True:
        events = list(session.execute(
            select(AuditEvent.id, AuditEvent.entity_id, AuditEvent.changes)
            .where(AuditEvent.change_set_id == original_id, AuditEvent.entity_type == "asset",
                   AuditEvent.id > last)
            .order_by(AuditEvent.id).limit(batch_size)
        ).tuples())
        if not events:
            return
        last = events[-1][0]
        steps = [Step(uuid.UUID(entity_id), (changes.get("version") or [None, None])[1], _reverse(changes))
                 for _id, entity_id, changes in events]
        fields = {f for _id, _entity, changes in events for f in changes if f in FIELDS}
        result = apply_batch(session, actor, change_set_id, steps, fields=fields,
                             since="the change set", action=AuditAction.undo, message=message)
        progress.add(session, result, len(steps))
        session.commit()


def _reverse(changes: dict[str, Any]) -> Any:
    """The planner that puts back what one audit event changed: each field's value before it,
    and the asset in or out of the trash as it was."""

    def plan(state: dict[str, Any]) -> Wanted | Verdict:
        values: dict[str, Any] = {}
        for name, pair in changes.items():
            if name not in FIELDS or name in assets.UNREVERTABLE:
                continue
            try:
                value = FIELDS[name](pair[0])
            except ValueError as exc:
                return Verdict("failed", f"{name} cannot be put back: {exc}")
            values[name] = NOT_NULL_DEFAULTS.get(name) if value is None and name in NOT_NULL_DEFAULTS else value
        trash = changes.get("deleted_at")
        return Wanted(values, trashed=None if trash is None else trash[0] is not None)

    return plan


def _finish(session: Session, change_set_id: uuid.UUID, status: ChangeSetStatus, error: str | None = None) -> None:
    session.execute(
        update(ChangeSet).where(ChangeSet.id == change_set_id)
        .values(status=status, finished_at=utcnow(), heartbeat_at=utcnow(), error=error)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def reap_stale(session: Session, stale_seconds: int = STALE_SECONDS) -> int:
    """Mark failed the running change sets whose job stopped (no heartbeat for `stale_seconds`).
    The batches they committed stay, and can be undone."""
    cutoff = utcnow() - timedelta(seconds=stale_seconds)
    reaped = session.execute(
        update(ChangeSet)
        .where(ChangeSet.status == ChangeSetStatus.running, ChangeSet.heartbeat_at < cutoff)
        .values(status=ChangeSetStatus.failed, finished_at=utcnow(),
                error="The job applying this change stopped (its worker was stopped or lost). "
                      "The batches before it were applied; undo them, or make the change again.")
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return reaped or 0


def discard_previews(session: Session, days: int = PREVIEW_DAYS) -> int:
    """Delete previews nobody applied within `days` (their frozen selections with them)."""
    cutoff = utcnow() - timedelta(days=days)
    old = select(ChangeSet.id).where(ChangeSet.status == ChangeSetStatus.previewed, ChangeSet.created_at < cutoff)
    ids = list(session.scalars(old))
    if ids:
        session.execute(ChangeSetItem.__table__.delete().where(ChangeSetItem.change_set_id.in_(ids)))
        session.execute(ChangeSet.__table__.delete().where(ChangeSet.id.in_(ids)))
    session.commit()
    return len(ids)
