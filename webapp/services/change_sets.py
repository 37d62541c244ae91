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
whose version moved on since.

A real import run is a change set too (kind `import`, `begin_import` when the run starts,
`finish_import` when it ends): every event it writes carries its id. Its undo folds each asset's
events (an import may change one asset several times): an asset it created goes to the trash, a
field it changed goes back, a relationship it added is removed, and its open review items are
dismissed — all under the undo's id. Undoing that undo puts the assets back and the links too.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
    ImportRun,
)
from webapp.models.base import utcnow
from webapp.services import assets, bulk, conflicts, database, proposals, relationships, review_bulk
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
# relationship events: they live in the assets' histories but change no asset (no version)
LINK_ACTIONS = (AuditAction.link, AuditAction.unlink)


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
                .values(status=ChangeSetStatus.queued, number=ChangeSet.next_number(), **_actor_columns(actor))
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
        params: dict[str, Any] = {"undo": original.number}
        if "review" in original.params and original.kind is ChangeSetKind.undo:
            raise InvalidState("The reopened items are back in the review queue: resolve them again there.")
        if "import" in original.params:  # an import, or an undo of one: its links and review items too
            params["import"] = original.params["import"]
        if original.kind is ChangeSetKind.review:  # review items resolved together: reopen them
            params["review"] = original.params.get("review")
            total = _review_steps(session, original.id)
        else:
            total = _undo_steps(session, original.id, folded="import" in params)
        if not total:
            raise InvalidState(f"{original.label.capitalize()} changed no asset: there is nothing to undo.")
        reverse_id = uuid.uuid4()
        try:
            session.add(ChangeSet(
                id=reverse_id, kind=ChangeSetKind.undo, status=ChangeSetStatus.queued,
                undo_of=original.id, selection={"change_set": str(original.id)},
                params=params, preview={}, reported=[], matched=total, total=total,
                **_actor_columns(actor),
            ))
            session.flush()
            session.execute(update(ChangeSet).where(ChangeSet.id == reverse_id).values(number=ChangeSet.next_number())
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


def _undo_steps(session: Session, original_id: uuid.UUID, *, folded: bool) -> int:
    """How many steps an undo takes: one per asset event of a bulk change set; one per asset
    and one per relationship of an import's (its events folded per asset)."""
    if not folded:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.change_set_id == original_id, AuditEvent.entity_type == "asset")) or 0
    asset_count = session.scalar(select(func.count(func.distinct(AuditEvent.entity_id))).where(
        *_asset_events(original_id))) or 0
    link_events = session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.change_set_id == original_id, AuditEvent.action.in_(LINK_ACTIONS))) or 0
    return asset_count + link_events // 2  # a link's events: one on each of its two assets


def _review_steps(session: Session, original_id: uuid.UUID) -> int:
    """How many steps undoing a bulk resolution takes: one per item it resolved."""
    return session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.change_set_id == original_id, AuditEvent.entity_type == conflicts.ENTITY,
        AuditEvent.action == AuditAction.resolve)) or 0


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
            if change_set.kind is ChangeSetKind.undo and "review" in change_set.params:
                _run_review_undo(session, actor, change_set, progress)
            elif change_set.kind is ChangeSetKind.undo and "import" in change_set.params:
                _run_folded_undo(session, actor, change_set, batch_size, progress)
            elif change_set.kind is ChangeSetKind.undo:
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
        done = get(session, change_set.id)  # a large bulk change refreshes the planner's statistics
        database.analyze_changed(session, {"assets": done.changed, "audit_events": done.changed,
                                           "change_set_items": done.matched})
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
        # assets approval covers become proposals (services/proposals); the rest change now
        held, result = proposals.hold_for_approval(session, actor, change_set_id, items, action)
        steps = [Step(asset_id, version, action.plan) for asset_id, version in items if asset_id not in held]
        applied = apply_batch(session, actor, change_set_id, steps, fields=action.fields,
                              since="the preview", message=message)
        for name in ("changed", "unchanged", "locked", "refused", "failed"):
            setattr(result, name, getattr(result, name) + getattr(applied, name))
        result.reported += applied.reported
        progress.add(session, result, len(items))
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


def _run_review_undo(session: Session, actor: Actor, change_set: ChangeSet, progress: _Progress) -> None:
    """Undo a bulk resolution: its dismissed items are reopened; merges and created assets are
    reported, not pretended undone (`review_bulk.reopen`). At most `conflicts.BULK_MAX` items:
    one batch."""
    assert change_set.undo_of is not None
    reopened, left = review_bulk.reopen(session, actor, change_set.undo_of, change_set_id=change_set.id)
    progress.add(session, BatchResult(changed=reopened, refused=len(left), reported=left),
                 reopened + len(left))
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


def _asset_events(original_id: uuid.UUID) -> tuple[Any, ...]:
    """The conditions that pick a change set's asset changes (not its relationship events)."""
    return (AuditEvent.change_set_id == original_id, AuditEvent.entity_type == "asset",
            AuditEvent.action.not_in(LINK_ACTIONS))


def _run_folded_undo(session: Session, actor: Actor, change_set: ChangeSet, batch_size: int,
                     progress: _Progress) -> None:
    """Undo an import (or an undo of one): per asset, all its events at once (one step per
    asset), then its relationships, then the import's open review items."""
    original = get(session, change_set.undo_of)  # type: ignore[arg-type]
    original_id, original_kind, change_set_id = original.id, original.kind, change_set.id
    message = describe(change_set.params)
    message = message[:1].lower() + message[1:]
    since = f"import #{change_set.params['import']}" if original_kind is ChangeSetKind.import_ \
        else "the change set"
    # putting back what discovery wrote is not a person's edit of those fields: lock nothing
    actor = dataclasses.replace(actor, is_manual=False)
    asset_ids = sorted(session.scalars(select(AuditEvent.entity_id).where(*_asset_events(original_id)).distinct()))
    for start in range(0, len(asset_ids), batch_size):
        chunk = asset_ids[start : start + batch_size]
        events: dict[str, list[tuple[AuditAction, dict[str, Any]]]] = {}
        for entity_id, action, changes in session.execute(
            select(AuditEvent.entity_id, AuditEvent.action, AuditEvent.changes)
            .where(*_asset_events(original_id), bulk.among(session, AuditEvent.entity_id, chunk))
            .order_by(AuditEvent.id)
        ).tuples():
            events.setdefault(entity_id, []).append((AuditAction(action), changes))
        steps = [_folded_step(uuid.UUID(entity_id), found) for entity_id, found in events.items()]
        fields = {f for found in events.values() for _action, changes in found for f in changes if f in FIELDS}
        result = apply_batch(session, actor, change_set_id, steps, fields=fields, since=since,
                             action=AuditAction.undo, message=message)
        progress.add(session, result, len(steps))
        session.commit()
    _undo_links(session, actor, original_id, change_set_id, batch_size, progress, message)
    if original_kind is ChangeSetKind.import_:
        run_id = session.scalar(select(ImportRun.id).where(ImportRun.change_set_id == original_id))
        if run_id is not None:
            conflicts.dismiss_for_run(session, actor, run_id, change_set_id=change_set_id,
                                      reason=f"{since} was undone ({message})")
            session.commit()


def _folded_step(asset_id: uuid.UUID, events: list[tuple[AuditAction, dict[str, Any]]]) -> Step:
    """One asset's step from the events a change set wrote on it, oldest first: expected at the
    version the last one left; created by it → to the trash; else each field back to its
    value before the first event that changed it."""
    version: int | None = None
    folded: dict[str, list[Any]] = {}
    for _action, changes in events:
        for name, pair in changes.items():
            folded[name] = [folded[name][0], pair[1]] if name in folded else list(pair)
        if changes.get("version"):
            version = changes["version"][1]
    if any(action is AuditAction.create for action, _changes in events):
        return Step(asset_id, version, _to_trash)
    return Step(asset_id, version, _reverse(folded))


def _to_trash(state: dict[str, Any]) -> Wanted:
    return Wanted({}, trashed=True)


def _undo_links(session: Session, actor: Actor, original_id: uuid.UUID, change_set_id: uuid.UUID,
                batch_size: int, progress: _Progress, message: str) -> None:
    """Each relationship the change set linked is removed, each it unlinked is made again (as
    it was, when both its assets are still there), in batches; the events carry the undo's id."""
    seen: set[str] = set()
    last = 0
    while True:
        rows = list(session.execute(
            select(AuditEvent.id, AuditEvent.changes)
            .where(AuditEvent.change_set_id == original_id, AuditEvent.action.in_(LINK_ACTIONS),
                   AuditEvent.id > last)
            .order_by(AuditEvent.id).limit(batch_size)
        ).tuples())
        if not rows:
            return
        last = rows[-1][0]
        wanted: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = []
        for _id, changes in rows:
            pair = changes.get("relationship") or [None, None]
            value = pair[1] if pair[1] is not None else pair[0]
            if not isinstance(value, dict) or value.get("id") in seen:
                continue
            seen.add(value["id"])
            wanted.append((pair[0], value))  # (the link before the change set: None = absent, it)
        removed = relationships.remove_many(
            session, actor, [uuid.UUID(v["id"]) for before, v in wanted if before is None],
            change_set_id=change_set_id, note=message)
        restored = relationships.restore_many(
            session, actor, [v for before, v in wanted if before is not None],
            change_set_id=change_set_id, note=message)
        result = BatchResult(changed=removed + restored, unchanged=len(wanted) - removed - restored)
        progress.add(session, result, len(wanted))
        session.commit()


# --- imports as change sets ---------------------------------------------------------------------

def begin_import(session: Session, run: ImportRun) -> ChangeSet:
    """The change set of a real import run that is starting (`running`, numbered, acting as
    its uploader under the run's label, `import #N`); sets `run.change_set_id` and commits."""
    for _attempt in range(5):
        change_set_id = uuid.uuid4()
        now = utcnow()
        try:
            session.add(ChangeSet(
                id=change_set_id, kind=ChangeSetKind.import_, status=ChangeSetStatus.running,
                selection={"import_run": str(run.id)}, params={"import": run.number}, preview={},
                reported=[], actor_id=run.uploaded_by, actor_label=run.label, runner="import",
                started_at=now, heartbeat_at=now,
            ))
            session.flush()
            session.execute(update(ChangeSet).where(ChangeSet.id == change_set_id).values(number=ChangeSet.next_number())
                            .execution_options(synchronize_session=False))
            run.change_set_id = change_set_id
            session.commit()
            return get(session, change_set_id)
        except IntegrityError:  # another change set took the number: take the next
            session.rollback()
    raise InvalidState("Could not number the import's change set; try again.")


def finish_import(session: Session, change_set_id: uuid.UUID, *, succeeded: bool, error: str | None) -> None:
    """End an import's change set with its run (in the caller's transaction): its counts are
    the assets the run's events changed."""
    changed = session.scalar(select(func.count(func.distinct(AuditEvent.entity_id))).where(
        AuditEvent.change_set_id == change_set_id, AuditEvent.entity_type == "asset")) or 0
    now = utcnow()
    session.execute(
        update(ChangeSet).where(ChangeSet.id == change_set_id)
        .values(status=ChangeSetStatus.succeeded if succeeded else ChangeSetStatus.failed,
                finished_at=now, heartbeat_at=now, error=error, matched=changed, changed=changed,
                total=changed, processed=changed)
        .execution_options(synchronize_session=False)
    )


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
        # an import's change set ends with its run (whose own reaper watches it)
        .where(ChangeSet.status == ChangeSetStatus.running, ChangeSet.heartbeat_at < cutoff,
               ChangeSet.kind != ChangeSetKind.import_)
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
