"""Flagging: the review items a batch asks for (SPEC §6). A possible duplicate (not sure
enough to merge, too sure to create), two existing assets one record shows to be the same
database, and a field conflict (a matched record contradicts a locked field, or another record
of the same run; a value a higher-precedence source outranks is only an observation). The same
question asked again finds the item already asked."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import Conflict, ConflictKind, ConflictStatus, RecordOutcome
from webapp.services import bulk, matching
from webapp.services.pipeline.items import IN_CHUNK, Item, Result, digest, incoming


def flag_duplicate(it: Item, state: dict[str, Any], score: matching.Score, result: Result) -> Result:
    """Not sure enough to merge, too sure to create: ask a reviewer (nothing is written to
    the inventory for this record until then)."""
    result.outcome = RecordOutcome.flagged
    result.message = (
        f"Possibly the same database as “{state['name']}” (confidence "
        f"{score.confidence:.0%}); waiting in the review queue."
    )
    result.conflict = {
        "kind": ConflictKind.possible_duplicate, "candidate_id": state["_id"],
        "incoming": incoming(it.fields), "confidence": round(score.confidence, 4),
        "reasons": score.reasons, "fields": {},
        "fingerprint": digest("possible_duplicate", state["_id"], it.fingerprint),
    }
    return result


def pair(
    it: Item, state: dict[str, Any], other: dict[str, Any], score: matching.Score, label: str
) -> dict[str, Any]:
    """A question about two existing assets one record (of the run `label`) shows to be the
    same database."""
    first, second = sorted((state["_id"], other["_id"]), key=str)
    return {
        "kind": ConflictKind.possible_duplicate, "candidate_id": first, "duplicate_id": second,
        "incoming": {}, "confidence": round(score.confidence, 4),
        "reasons": [f"record {it.record.key} of {label} names both “{state['name']}” "
                    f"and “{other['name']}”", *score.reasons],
        "fields": {}, "fingerprint": digest("duplicate", str(first), str(second)),
    }


def flag_fields(
    it: Item, state: dict[str, Any], held: dict[str, list[Any]], result: Result, why: dict[str, str]
) -> None:
    """The record matched, but these fields need a person (`why`: the reason for each): a
    value contradicting a locked field, or another record of the same run."""
    reasons = [why[name] for name in held]
    result.outcome = RecordOutcome.flagged
    result.message = (
        "Differs from values this import may not overwrite (" + ", ".join(held)
        + "); waiting in the review queue."
    )
    result.conflict = {
        "kind": ConflictKind.field_conflict, "candidate_id": state["_id"],
        "incoming": incoming(it.fields), "confidence": 1.0, "reasons": reasons,
        "fields": held,
        "fingerprint": digest("field_conflict", state["_id"], {f: v[1] for f, v in held.items()}),
    }


def conflicts(
    session: Session, run_id: Any, results: list[Result], now: datetime
) -> list[dict[str, Any]]:
    """Review items for the flagged records, as rows to insert. The same question asked
    again (same candidate, same incoming values) finds the item already asked: an open one
    is reused; one a reviewer answered is not asked again."""
    pending = [r for r in results if r.conflict is not None or r.pairs]
    if not pending:
        return []
    asked_all = [q for r in pending for q in [r.conflict, *r.pairs] if q is not None]
    fingerprints = sorted({q["fingerprint"] for q in asked_all})
    known: dict[tuple[Any, str], tuple[uuid.UUID, ConflictStatus]] = {}
    table = Conflict.__table__
    for start in range(0, len(fingerprints), IN_CHUNK):
        rows = session.execute(
            select(table.c.candidate_id, table.c.fingerprint, table.c.id, table.c.status)
            .where(bulk.among(session, table.c.fingerprint, fingerprints[start : start + IN_CHUNK]))
            .order_by(table.c.created_at)
        )
        for candidate_id, fp, conflict_id, status in rows:
            known[(candidate_id, fp)] = (conflict_id, ConflictStatus(status))
    new: list[dict[str, Any]] = []

    def ask(asked: dict[str, Any], r: Result) -> tuple[uuid.UUID, ConflictStatus]:
        key = (asked["candidate_id"], asked["fingerprint"])
        found = known.get(key)
        if found is None:
            found = known[key] = (uuid.uuid4(), ConflictStatus.open)
            new.append({
                "duplicate_id": None, **asked, "id": found[0], "import_run_id": run_id,
                "record_key": r.key[:600], "status": ConflictStatus.open, "resolution": None,
                "result_asset_id": None, "resolved_by": None, "resolved_at": None,
                "created_at": now,
            })
        return found

    for r in pending:
        for asked_pair in r.pairs:
            conflict_id, status = ask(asked_pair, r)
            if status == ConflictStatus.open and r.conflict is None:
                r.conflict_id = conflict_id  # the record shows where its question went
        asked = r.conflict
        if asked is None:
            continue
        conflict_id, status = ask(asked, r)
        if status == ConflictStatus.open:
            r.conflict_id = conflict_id
            continue
        r.conflict = None  # answered before: not asked again
        if asked["kind"] == ConflictKind.possible_duplicate:
            r.outcome = RecordOutcome.skipped
            r.message = ("A reviewer already decided about this record (it possibly "
                         "duplicates another asset); it is left out.")
        else:
            r.outcome = RecordOutcome.updated if r.changes else RecordOutcome.unchanged
            r.message = "A reviewer already kept the current values of: " + ", ".join(asked["fields"])
    return new
