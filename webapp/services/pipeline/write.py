"""Writing a batch: new and changed asset rows, their tags and identifier keys, the bridges
learnt, audit events, and the records' outcomes and the run's progress. Assets are written with
Core statements in bulk, not one ORM object per record (SPEC §11)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, MetaData, Table, bindparam, or_, select, text, update
from sqlalchemy.orm import Session

from webapp.models import (
    AssetIdentifier,
    HostBridge,
    ImportRecord,
    ImportRun,
    RecordOutcome,
    asset_tags,
)
from webapp.services import assets, audit, bulk, identifiers, policy_results
from webapp.services.actor import Actor
from webapp.services.pipeline.items import (
    ASSETS,
    COLUMN,
    IN_CHUNK,
    ROW_ERRORS_MAX,
    SEEN_REFRESH,
    Result,
    Retry,
    Work,
)


class Writer:
    """Writes the batches of one run (a dry run writes only its records and progress)."""

    def __init__(self, session: Session, run: ImportRun, actor: Actor) -> None:
        self.session = session
        self.run = run
        self.run_id = run.id
        self.dry = run.dry_run
        self.actor = actor
        # the run's change set (None for a dry run): every event of the run carries it
        self.change_set_id = run.change_set_id

    def write(
        self,
        work: dict[uuid.UUID, Work],
        results: list[Result],
        new_bridges: set[tuple[str, str]],
        now: datetime,
    ) -> None:
        session = self.session
        new = [w for w in work.values() if w.is_new]
        changed = [w for w in work.values() if not w.is_new and w.events]
        seen = [w.state["_id"] for w in work.values() if not w.is_new and not w.events]
        # records identical to an earlier run's (`Lookup.already_applied`) are sightings too
        seen += [r.asset_id for r in results if r.asset_id is not None and r.asset_id not in work
                 and r.outcome == RecordOutcome.unchanged]
        self._check_versions(changed)
        bulk.insert_rows(session, ASSETS, [self._row(w.state, now) for w in new])
        self._update_rows(changed, now)
        self._write_tags(new, changed)
        if new:
            # the keys `_create` made, unless a later record of the batch changed a key field
            bulk.insert_rows(
                session,
                AssetIdentifier.__table__,
                [{"key": k, "asset_id": w.state["_id"]}
                 for w in new
                 for k in dict.fromkeys(w.state["_new_keys"] if not identifiers.KEY_FIELDS & w.changed
                                        else identifiers.keys_for(w.state))],
            )
        self._rekey([w for w in changed if identifiers.KEY_FIELDS & w.changed])
        refreshed: list[uuid.UUID] = []
        for start in range(0, len(seen), IN_CHUNK):
            refreshed += touch_seen(self.session, bulk.among(self.session, ASSETS.c.id, seen[start : start + IN_CHUNK]), now)
        # policy results of what this batch created, changed or saw again (staleness reads
        # last_seen_at): recomputed set-wise before the batch commits
        policy_results.touch(session, [*(w.state["_id"] for w in new), *(w.state["_id"] for w in changed),
                                       *refreshed])
        if new_bridges:
            bulk.insert_rows(
                session, HostBridge.__table__,
                [{"address": a, "hostname": h, "import_run_id": self.run_id, "learnt_at": now}
                 for a, h in sorted(new_bridges)],
            )
        events = [e for w in work.values() for e in w.events]
        audit.record_many(session, self.actor, events, change_set_id=self.change_set_id)

    def _rekey(self, changed: list[Work]) -> None:
        """Write only the identifier keys that appeared or went away (aliases mostly grow)."""
        added: list[dict[str, Any]] = []
        removed: list[tuple[uuid.UUID, str]] = []
        for w in changed:
            asset_id, old = w.state["_id"], frozenset(identifiers.keys_for(w.state["_key_values"]))
            new = frozenset(identifiers.keys_for(w.state))
            added += [{"key": k, "asset_id": asset_id} for k in sorted(new - old)]
            removed += [(asset_id, k) for k in sorted(old - new)]
        table = AssetIdentifier.__table__
        for asset_id, key in removed:
            self.session.execute(table.delete().where(table.c.asset_id == asset_id, table.c.key == key))
        bulk.insert_rows(self.session, table, added)

    def _check_versions(self, changed: list[Work]) -> None:
        """Lock the rows about to change; if anyone changed or removed one since it was read,
        redo the batch."""
        expected = {w.state["_id"]: w.read_version for w in changed}
        ids = list(expected)
        found: dict[uuid.UUID, int] = {}
        for start in range(0, len(ids), IN_CHUNK):
            stmt = select(ASSETS.c.id, ASSETS.c.version).where(
                bulk.among(self.session, ASSETS.c.id, ids[start : start + IN_CHUNK]))
            if bulk.is_postgresql(self.session):
                stmt = stmt.with_for_update()
            found.update(self.session.execute(stmt).tuples().all())
        if found != expected:
            raise Retry

    def _columns(self, state: dict[str, Any], now: datetime) -> dict[str, Any]:
        """The asset row's columns that a batch writes, from the asset's state as it leaves
        the batch (inserted as a new row, or written over an existing one)."""
        row = {COLUMN.get(f, f): state[f] for f in assets.FIELDS if f != "tags"}
        row.update(
            id=state["_id"], version=state["_version"], updated_at=now, field_sources=state["_sources"],
            updated_by=self.actor.user_id, last_import_id=self.run_id, last_seen_at=now, missed_since=None,
            first_seen_at=state["_first_seen_at"] or now,
            search_text=assets.search_text_of(state, state["aliases"], state["tags"]),
        )
        return row

    def _row(self, state: dict[str, Any], now: datetime) -> dict[str, Any]:
        return {
            **self._columns(state, now), "locked_fields": [], "created_at": now,
            "created_by": self.actor.user_id, "deleted_at": None, "deleted_by": None,
            "merged_into": None,
        }

    def _update_rows(self, changed: list[Work], now: datetime) -> None:
        """Write the changed assets' new state (rows were locked and checked just before)."""
        if not changed:
            return
        rows = [self._columns(w.state, now) for w in changed]
        names = [n for n in rows[0] if n != "id"]
        if bulk.is_postgresql(self.session):
            # one statement for the batch: COPY the new rows into a scratch table, then UPDATE
            # ... FROM it (an UPDATE per asset costs a round trip each)
            scratch = Table("import_changes", MetaData(), *[Column(n, ASSETS.c[n].type) for n in rows[0]])
            self.session.execute(text(
                "CREATE TEMPORARY TABLE import_changes ON COMMIT DROP AS SELECT "
                + ", ".join(f'"{n}"' for n in rows[0]) + " FROM assets WITH NO DATA"
            ))
            bulk.insert_rows(self.session, scratch, rows)
            self.session.execute(text(
                "UPDATE assets SET " + ", ".join(f'"{n}" = c."{n}"' for n in names)
                + " FROM import_changes c WHERE assets.id = c.id"
            ))
            self.session.execute(text("DROP TABLE import_changes"))
            return
        stmt = update(ASSETS).where(ASSETS.c.id == bindparam("_id")).values({n: bindparam(n) for n in names})
        self.session.execute(stmt, [{**r, "_id": r["id"]} for r in rows])

    def _write_tags(self, new: list[Work], changed: list[Work]) -> None:
        wanted: dict[uuid.UUID, list[str]] = {}
        for w in new:
            if w.state["tags"]:
                wanted[w.state["_id"]] = list(w.state["tags"])
        for w in changed:
            if "tags" in w.changed:
                wanted[w.state["_id"]] = list(w.state["tags"])
        if not wanted:
            return
        names = sorted({n for tags in wanted.values() for n in tags})
        ids = assets.tag_ids(self.session, names, IN_CHUNK)
        existing: set[tuple[uuid.UUID, int]] = set()
        changed_ids = [w.state["_id"] for w in changed if "tags" in w.changed]
        for start in range(0, len(changed_ids), IN_CHUNK):
            chunk = changed_ids[start : start + IN_CHUNK]
            existing |= set(
                self.session.execute(
                    select(asset_tags.c.asset_id, asset_tags.c.tag_id).where(
                        bulk.among(self.session, asset_tags.c.asset_id, chunk))
                ).tuples()
            )
        links = [
            {"asset_id": asset_id, "tag_id": ids[n]}
            for asset_id, tags in wanted.items()
            for n in tags
            if (asset_id, ids[n]) not in existing
        ]
        bulk.insert_rows(self.session, asset_tags, links)

    def record(
        self, results: list[Result], position: int, imagined: set[uuid.UUID], now: datetime
    ) -> None:
        """The records' outcomes, and the run's progress and counts (`position`: records
        processed before this batch; `imagined`: the assets a dry run would have created)."""
        rows = [
            {
                "run_id": self.run_id, "seq": r.seq, "key": r.key[:600], "outcome": r.outcome,
                # a dry run's new assets do not exist (nor do later records' matches of them)
                "asset_id": None if self.dry and r.asset_id in imagined else r.asset_id,
                "conflict_id": None if self.dry else r.conflict_id, "message": r.full_message,
                "changes": r.changes,
                "asset_version": None if self.dry else r.asset_version,
                "fingerprint": r.fingerprint, "seen_at": now,
            }
            for r in results
        ]
        bulk.insert_rows(self.session, ImportRecord.__table__, rows)
        run = self.run
        counts = {o: 0 for o in RecordOutcome}
        for r in results:
            counts[r.outcome] += 1
        run.processed = position + len(results)
        run.created += counts[RecordOutcome.created]
        run.updated += counts[RecordOutcome.updated]
        run.unchanged += counts[RecordOutcome.unchanged]
        run.flagged += counts[RecordOutcome.flagged]
        run.failed += counts[RecordOutcome.failed]
        run.skipped += counts[RecordOutcome.skipped]
        errors = [
            {"row": r.row or r.seq, "key": r.key, "message": r.message}
            for r in results
            if r.outcome == RecordOutcome.failed
        ]
        if errors and len(run.row_errors or []) < ROW_ERRORS_MAX:
            run.row_errors = [*(run.row_errors or []), *errors][:ROW_ERRORS_MAX]
        warned = [
            {"row": r.row or r.seq, "key": r.key, "message": "; ".join(r.warnings)}
            for r in results
            if r.warnings and r.outcome != RecordOutcome.failed
        ]
        run.warned = (run.warned or 0) + len(warned)
        if warned and len(run.row_warnings or []) < ROW_ERRORS_MAX:
            run.row_warnings = [*(run.row_warnings or []), *warned][:ROW_ERRORS_MAX]
        run.heartbeat_at = now


def touch_seen(session: Session, which: Any, now: datetime) -> list[uuid.UUID]:
    """Record that imports saw these assets (`which`: a condition on `assets`). Bookkeeping,
    not a change: no version, no audit event, and at most once per SEEN_REFRESH per asset
    (at once for an asset a covering scan had missed: the sighting clears `missed_since`).
    Returns the ids it wrote (an identical re-import within SEEN_REFRESH writes none)."""
    return list(session.scalars(
        update(ASSETS)
        .where(which, or_(ASSETS.c.last_seen_at.is_(None), ASSETS.c.last_seen_at < now - SEEN_REFRESH,
                          ASSETS.c.missed_since.is_not(None)))
        .values(last_seen_at=now, missed_since=None, updated_at=ASSETS.c.updated_at)
        .returning(ASSETS.c.id)
    ))
