"""Policy results kept current (SPEC §12): every change to an asset or a relationship
re-evaluates the controls of the assets it touches, in the same transaction.

    policy_results.touch(session, ids)        # Core writes (imports, bulk actions) say which
    session.commit()                          # ...and the results are written before it commits
    policy_results.evaluate_ids(session, ids) # what the commit runs; also callable directly
    policy_results.evaluate_all(session, progress=...)   # a parameter changed, or time passed

How it stays current
--------------------
A session collects the ids of the assets that changed: ORM writes are seen by an `after_flush`
listener (an `Asset` added, changed or deleted; an `AssetRelationship` added, changed or
deleted: both its ends), and services that write with Core statements call `touch`. Just before
the transaction commits, a `before_commit` listener evaluates those assets and their direct
neighbours in the dependency graph (a neighbour's environment, criticality or presence is what
the graph controls read), replacing their rows in `policy_results`. A commit that changed no
asset costs nothing.

An evaluation is set-wise: one query for the assets' facts, one per direction for their
neighbours, one for the live exceptions, one for the stored results, then one delete and one
multi-row insert (COPY on PostgreSQL) of only the results that changed, per batch; never a
query per asset. An unchanged result is not rewritten, so `evaluated_at` says since when it
holds. A failure that a live exception covers is stored as `excepted`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, event, func, or_, select
from sqlalchemy.orm import Session, aliased

from webapp import policy
from webapp.models import (
    Asset,
    AssetRelationship,
    EventSeverity,
    PolicyException,
    PolicyResult,
    PolicyStatus,
    Role,
)
from webapp.models.base import utcnow
from webapp.services import bulk, outbox, settings

SEVERE = [policy.Severity.high, policy.Severity.critical]  # what a new failure is announced for
NEWS_PER_BATCH = 20  # past this many assets newly failing in one batch, one event says how many
PENDING = "policy_pending"  # session.info: ids of assets whose results must be recomputed
BATCH_SIZE = 1_000  # assets per evaluation statement group (ids bound in IN lists)
RESULTS = PolicyResult.__table__
FACT_COLUMNS = [getattr(Asset, name) for name in policy.COLUMNS]
STORED = {policy.Status.pass_: PolicyStatus.pass_, policy.Status.fail: PolicyStatus.fail,
          policy.Status.unknown: PolicyStatus.unknown}


# --- what changed ---------------------------------------------------------------------------

def touch(session: Session, asset_ids: Iterable[uuid.UUID | str]) -> None:
    """Mark assets whose results must be recomputed before this transaction commits (for
    writes the ORM does not see: Core updates and inserts)."""
    pending: set[uuid.UUID] = session.info.setdefault(PENDING, set())
    pending.update(a if isinstance(a, uuid.UUID) else uuid.UUID(str(a)) for a in asset_ids)


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _flush_context: Any) -> None:
    changed: set[uuid.UUID] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Asset):
            if obj.id is not None:
                changed.add(obj.id)
        elif isinstance(obj, AssetRelationship):
            changed.update(i for i in (obj.source_id, obj.target_id) if i is not None)
    if changed:
        touch(session, changed)


@event.listens_for(Session, "before_commit")
def _evaluate_pending(session: Session) -> None:
    # an evaluation flushes and may itself collect nothing new; loop until nothing is pending
    for _round in range(3):
        session.flush()
        pending = session.info.pop(PENDING, None)
        if not pending:
            return
        evaluate_ids(session, pending, with_neighbours=True)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(PENDING, None)


# --- evaluating -----------------------------------------------------------------------------

def parameters(session: Session) -> dict[str, Any]:
    """The admin's parameter values ({control id: {name: value}}), as stored."""
    return settings.get(session, "policy_parameters") or {}


def context(session: Session, *, now: datetime | None = None,
            neighbours: dict[uuid.UUID, list[policy.Neighbour]] | None = None) -> policy.Context:
    values = settings.all_settings(session)
    return policy.Context.build(
        now=now or utcnow(), parameters=values.get("policy_parameters") or {},
        stale_after_days=int(values["stale_after_days"]), neighbours=neighbours,
    )


def evaluate_ids(session: Session, asset_ids: Iterable[uuid.UUID], *, with_neighbours: bool = False,
                 now: datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Recompute and store the results of these assets (and, with `with_neighbours`, of the
    assets linked to them), in the caller's transaction. Assets that are gone or out of scope
    lose their rows. Returns the number of result rows written."""
    ids = set(asset_ids)
    if with_neighbours and ids:
        ids |= _linked_ids(session, ids)
    base = context(session, now=now)
    written = 0
    for chunk in _chunks(sorted(ids), batch_size):
        written += _evaluate_ids(session, chunk, base)
    return written


def evaluate_all(session: Session, *, now: datetime | None = None, batch_size: int = BATCH_SIZE,
                 progress: Callable[[int, int], None] | None = None) -> int:
    """Recompute every asset's results, a batch per transaction (a parameter changed, or time
    passed: backup age, staleness, exceptions expiring). `progress(done, total)` after each batch.
    Returns the number of result rows written.

    Batches walk the assets in id order, and each batch's lookups (relationships, exceptions,
    stored results) are range scans between its first and last id rather than lists of ids."""
    total = session.scalar(select(func.count()).select_from(Asset)) or 0
    base = context(session, now=now)
    done = written = 0
    after: uuid.UUID | None = None
    while True:
        stmt = select(*FACT_COLUMNS).order_by(Asset.id).limit(batch_size)
        if after is not None:
            stmt = stmt.where(Asset.id > after)
        rows = session.execute(stmt).all()
        if not rows:
            break
        first, last = rows[0][0], rows[-1][0]
        written += _evaluate_chunk(session, rows, base, lambda column, lo=first, hi=last: column.between(lo, hi))
        session.info.pop(PENDING, None)  # nothing else changed: the commit has nothing to add
        session.commit()
        after, done = last, done + len(rows)
        if progress is not None:
            progress(done, total)
    _analyze(session)
    return written


def _analyze(session: Session) -> None:
    """After rewriting a large share of the results, refresh the planner's statistics, so the
    next evaluation's lookups by asset use the index instead of scanning, and mark the table's
    pages all-visible, so the policy filters and counts are index-only scans (PostgreSQL; VACUUM
    runs outside a transaction, on a connection of its own)."""
    if bulk.is_postgresql(session):
        session.commit()
        with session.get_bind().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) policy_results")


def evaluate_missing(session: Session, *, now: datetime | None = None, batch_size: int = BATCH_SIZE,
                     progress: Callable[[int, int], None] | None = None) -> int:
    """Evaluate the live assets that have no result yet (made before results were kept, or
    loaded by a tool that bypassed the services), a batch per transaction."""
    missing = list(session.scalars(
        select(Asset.id).where(Asset.deleted_at.is_(None), ~select(RESULTS.c.asset_id)
                               .where(RESULTS.c.asset_id == Asset.id).exists())
        .order_by(Asset.id)
    ))
    base = context(session, now=now)
    written = 0
    for done, chunk in enumerate(_chunks(missing, batch_size), start=1):
        written += _evaluate_ids(session, chunk, base)
        session.info.pop(PENDING, None)
        session.commit()
        if progress is not None:
            progress(min(done * batch_size, len(missing)), len(missing))
    if missing:
        _analyze(session)
    return written


def _chunks(items: Sequence[uuid.UUID], size: int) -> Iterator[Sequence[uuid.UUID]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _linked_ids(session: Session, ids: set[uuid.UUID]) -> set[uuid.UUID]:
    linked: set[uuid.UUID] = set()
    rel = AssetRelationship
    for chunk in _chunks(sorted(ids), BATCH_SIZE):
        for source, target in session.execute(
            select(rel.source_id, rel.target_id).where(or_(bulk.among(session, rel.source_id, chunk),
                                                           bulk.among(session, rel.target_id, chunk)))
        ):
            linked.add(source)
            linked.add(target)
    return linked


def _evaluate_ids(session: Session, ids: Sequence[uuid.UUID], base: policy.Context) -> int:
    def within(column: Any) -> Any:
        return bulk.among(session, column, list(ids))

    return _evaluate_chunk(session, session.execute(select(*FACT_COLUMNS).where(within(Asset.id))).all(),
                           base, within)


def _evaluate_chunk(session: Session, rows: Sequence[Any], base: policy.Context,
                    within: Callable[[Any], Any]) -> int:
    """Evaluate these assets (rows of FACT_COLUMNS; `within(column)` is the condition that
    picks their ids) and write only what differs from what is stored: a result whose status and
    reason are unchanged is left as it is (its `evaluated_at` says since when it holds), a new
    or changed one is written, one that no longer applies is deleted. Returns the number of rows
    written."""
    live, wanted = expected(session, rows, base, within)
    stored = stored_results(session, within)
    gone: dict[str, list[uuid.UUID]] = defaultdict(list)  # by control: each delete uses the key
    for (asset_id, control_id), value in stored.items():
        if wanted.get((asset_id, control_id)) != value:
            gone[control_id].append(asset_id)
    for control_id, asset_ids in gone.items():
        session.execute(delete(RESULTS).where(RESULTS.c.control_id == control_id,
                                              bulk.among(session, RESULTS.c.asset_id, asset_ids)))
    rows_out = [{"asset_id": a, "control_id": c, "status": status.value, "reason": reason,
                 "evaluated_at": base.now}
                for (a, c), (status, reason) in wanted.items() if stored.get((a, c)) != (status, reason)]
    bulk.insert_rows(session, RESULTS, rows_out)  # COPY on PostgreSQL
    if stored:
        _announce_new_failures(session, stored, rows_out, {f.id: f for f in live})
    return len(rows_out)


def expected(session: Session, rows: Sequence[Any], base: policy.Context, within: Callable[[Any], Any]
             ) -> tuple[list[policy.AssetFacts], dict[tuple[uuid.UUID, str], tuple[PolicyStatus, str]]]:
    """What the results of these assets (rows of FACT_COLUMNS) should be now: the facts of those
    in scope, and {(asset, control): (status, reason)}. Reads, writes nothing (`flask validate`
    compares it with what is stored)."""
    live = [f for f in map(policy.AssetFacts.from_typed_row, rows) if policy.in_scope(f)]
    neighbours = _neighbours(session, within) if live else {}
    excepted = _excepted(session, within, base.now) if live else set()
    ctx = policy.Context(base.now, base.parameters, base.stale_after_days, neighbours)
    wanted: dict[tuple[uuid.UUID, str], tuple[PolicyStatus, str]] = {}
    for f in live:
        for control_id, result in policy.evaluate(f, ctx).items():
            status = STORED[result.status]
            if status is PolicyStatus.fail and (f.id, control_id) in excepted:
                status = PolicyStatus.excepted
            wanted[(f.id, control_id)] = (status, result.reason)
    return live, wanted


def stored_results(session: Session, within: Callable[[Any], Any]
                   ) -> dict[tuple[uuid.UUID, str], tuple[PolicyStatus, str]]:
    """The stored results of the assets `within(column)` picks."""
    return {(a, c): (PolicyStatus(st), reason) for a, c, st, reason in session.execute(
        select(RESULTS.c.asset_id, RESULTS.c.control_id, RESULTS.c.status, RESULTS.c.reason)
        .where(within(RESULTS.c.asset_id)))}


def _announce_new_failures(session: Session, stored: dict[tuple[uuid.UUID, str], tuple[PolicyStatus, str]],
                           rows: list[dict[str, Any]], facts: dict[uuid.UUID, policy.AssetFacts]) -> None:
    """An outbox event (SPEC §13) for each asset that newly fails a control of severity high or
    critical: it had a result for the control, and it was not a failure. An asset's first
    evaluation announces nothing (a new import's failures are the import's news, not a change
    of posture). Past NEWS_PER_BATCH assets, one event says how many."""
    news: dict[uuid.UUID, list[tuple[policy.Control, str]]] = defaultdict(list)
    for row in rows:
        key = (row["asset_id"], row["control_id"])
        control = policy.CONTROLS[row["control_id"]]
        if (row["status"] == PolicyStatus.fail.value and control.severity in SEVERE and key in stored
                and stored[key][0] is not PolicyStatus.fail):
            news[row["asset_id"]].append((control, row["reason"]))
    if not news:
        return
    if len(news) > NEWS_PER_BATCH:
        outbox.emit(session, "policy_failing", severity=EventSeverity.high, min_role=Role.analyst,
                    subject=f"{len(news):,} assets newly fail a high or critical policy control",
                    link="/assets?policy_failing=true",
                    payload={"assets": len(news), "asset_ids": [str(a) for a in list(news)[:1000]]})
        return
    for asset_id, failures in news.items():
        worst = max((c.severity for c, _ in failures), key=SEVERE.index)
        name = facts[asset_id].name if asset_id in facts else str(asset_id)
        titles = ", ".join(f"“{c.title}”" for c, _ in failures)
        outbox.emit(session, "policy_failing", severity=EventSeverity(worst.value),
                    min_role=Role.analyst, subject=f"{name} now fails {titles}"[:300],
                    body="\n".join(f"{c.title} ({c.severity.value}): {reason}" for c, reason in failures),
                    link=f"/assets/{asset_id}/policy",
                    payload={"asset_id": str(asset_id), "asset": name,
                             "controls": [c.id for c, _ in failures]})


def _neighbours(session: Session, within: Callable[[Any], Any]) -> dict[uuid.UUID, list[policy.Neighbour]]:
    """Each asset's relationships, with the facts of the asset at the other end: one query per
    direction for the whole batch."""
    found: dict[uuid.UUID, list[policy.Neighbour]] = defaultdict(list)
    other = aliased(Asset)
    columns = [getattr(other, name) for name in policy.COLUMNS]
    rel = AssetRelationship
    typed = policy.AssetFacts.from_typed_row
    for mine, theirs, direction in ((rel.source_id, rel.target_id, "out"),
                                    (rel.target_id, rel.source_id, "in")):
        for row in session.execute(
            select(mine.label("me"), rel.kind, *columns)
            .join(other, other.id == theirs)
            .where(within(mine))
        ):
            found[row[0]].append(policy.Neighbour(row[1], direction, typed(row[2:])))
    return found


def _excepted(session: Session, within: Callable[[Any], Any], now: datetime) -> set[tuple[uuid.UUID, str]]:
    return set(session.execute(
        select(PolicyException.asset_id, PolicyException.control_id)
        .where(within(PolicyException.asset_id), PolicyException.expires_at > now)
    ).tuples())
