"""Review items (conflicts) for tests: Conflict rows made directly, as the import pipeline
makes them, about real assets made through the assets service (tests/factories.py)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from tests.factories import ACTOR
from webapp.models import (
    Asset,
    Conflict,
    ConflictKind,
    ImportRecord,
    ImportRun,
    ImportStatus,
    RecordOutcome,
)
from webapp.models.base import utcnow
from webapp.services import imports

_files = itertools.count(1)
_ages = itertools.count(1)


def make_run(session, source: str = "nmap-dc1") -> ImportRun:  # type: ignore[no-untyped-def]
    """A finished (not dry) import run, as one that flagged records leaves it."""
    data = f'[{{"name": "scan-{next(_files)}", "engine": "mysql"}}]'.encode()
    run = imports.create_run(session, ACTOR, data=data, filename="scan.json", source=source)
    now = utcnow()
    run.status, run.started_at, run.finished_at = ImportStatus.succeeded, now, now
    session.commit()
    return run


def _add(session, conflict: Conflict, run: ImportRun | None, *, age: timedelta | None,  # type: ignore[no-untyped-def]
         record_asset: Asset | None = None) -> Conflict:
    # distinct creation times, newest made last, so queue order is the order of making
    conflict.created_at = utcnow() - (age if age is not None else timedelta(hours=1000 - next(_ages)))
    session.add(conflict)
    session.flush()
    if run is not None and conflict.record_key:
        seq = (session.scalar(select(func.max(ImportRecord.seq)).where(ImportRecord.run_id == run.id))
               or 0) + 1
        session.add(ImportRecord(
            run_id=run.id, seq=seq, key=conflict.record_key, outcome=RecordOutcome.flagged,
            asset_id=record_asset.id if record_asset else None, conflict_id=conflict.id,
            message="sent to the review queue",
        ))
    session.commit()
    return conflict


def possible_duplicate(session, candidate: Asset, incoming: dict[str, Any], *,  # type: ignore[no-untyped-def]
                       run: ImportRun | None = None, confidence: float = 0.8,
                       reasons: list[str] | None = None, record_key: str = "csv:1",
                       age: timedelta | None = None) -> Conflict:
    """An incoming record that may be `candidate` (its import record has no asset yet)."""
    return _add(session, Conflict(
        kind=ConflictKind.possible_duplicate, candidate_id=candidate.id, incoming=incoming,
        confidence=confidence, reasons=reasons or ["same host:port", "name similarity 0.82"],
        import_run_id=run.id if run else None, record_key=record_key if run else None,
    ), run, age=age)


def duplicate_assets(session, candidate: Asset, duplicate: Asset, *,  # type: ignore[no-untyped-def]
                     confidence: float = 0.7, age: timedelta | None = None) -> Conflict:
    """Two existing assets that may be one database."""
    return _add(session, Conflict(
        kind=ConflictKind.possible_duplicate, candidate_id=candidate.id, duplicate_id=duplicate.id,
        incoming={}, confidence=confidence, reasons=["same database name on another host"],
    ), None, age=age)


def field_conflict(session, candidate: Asset, fields: dict[str, list[Any]], *,  # type: ignore[no-untyped-def]
                   run: ImportRun | None = None, record_key: str = "csv:2",
                   age: timedelta | None = None) -> Conflict:
    """A record matched `candidate` but differs on locked or higher-precedence fields."""
    return _add(session, Conflict(
        kind=ConflictKind.field_conflict, candidate_id=candidate.id, fields=fields,
        confidence=1.0, reasons=["owner is locked"], incoming={},
        import_run_id=run.id if run else None, record_key=record_key if run else None,
    ), run, age=age, record_asset=candidate)
