"""What import runs' record outcomes say, read-only: an asset's sightings (which runs saw it,
under which key, when), the names and run numbers a page of outcomes shows, and a replayed
run's view of the outcomes it repeated (`services/imports.py` writes them)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, literal, select, union_all
from sqlalchemy.orm import Session, aliased

from webapp.models import Asset, ImportRecord, ImportRun, RecordOutcome


def asset_names(session: Session, asset_ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    """{asset id: name} of the assets a page of records names (one query; purged ones are
    missing)."""
    ids = {i for i in asset_ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(select(Asset.id, Asset.name).where(Asset.id.in_(ids))).tuples().all())


# outcomes that leave the asset as the record describes it: seen again, they are `unchanged`
APPLIED = (RecordOutcome.created, RecordOutcome.updated, RecordOutcome.unchanged)


@dataclass(frozen=True)
class RecordView:
    """A record outcome as a replayed run reports it (read-only, like ImportRecord's columns)."""

    run_id: uuid.UUID
    seq: int
    key: str
    outcome: RecordOutcome
    asset_id: uuid.UUID | None
    conflict_id: uuid.UUID | None
    asset_version: int | None
    message: str | None
    changes: dict[str, Any] | None
    fingerprint: str | None
    seen_at: datetime

    @classmethod
    def replayed(cls, record: ImportRecord, run: ImportRun) -> RecordView:
        outcome = RecordOutcome.unchanged if record.outcome in APPLIED else record.outcome
        return cls(run.id, record.seq, record.key, outcome, record.asset_id, record.conflict_id,
                   record.asset_version, record.message, None, record.fingerprint,
                   run.started_at or run.created_at)


@dataclass(frozen=True)
class Sighting:
    run_id: uuid.UUID
    number: int
    source: str
    format: str
    key: str
    outcome: RecordOutcome
    seen_at: datetime


def sightings(session: Session, asset_id: uuid.UUID, *, limit: int = 50) -> list[Sighting]:
    """Which (real, not dry) runs saw this asset, under which record key, when; newest first.
    A replayed run saw what the run it replayed saw."""
    replay = aliased(ImportRun)
    direct = (
        select(
            ImportRun.id, ImportRun.number, ImportRun.source, ImportRun.format,
            ImportRecord.key, ImportRecord.outcome.label("outcome"), ImportRecord.seen_at.label("seen_at"),
        )
        .join(ImportRun, ImportRun.id == ImportRecord.run_id)
        .where(ImportRecord.asset_id == asset_id, ImportRun.dry_run.is_(False))
    )
    again = case((ImportRecord.outcome.in_(APPLIED), literal(RecordOutcome.unchanged.value)),
                 else_=ImportRecord.outcome)
    replayed = (
        select(
            replay.id, replay.number, replay.source, replay.format,
            ImportRecord.key, again.label("outcome"), replay.created_at.label("seen_at"),
        )
        .join(replay, replay.replay_of == ImportRecord.run_id)
        .where(ImportRecord.asset_id == asset_id)
    )
    both = union_all(direct, replayed).subquery()
    rows = session.execute(select(both).order_by(both.c.seen_at.desc(), both.c.number.desc()).limit(limit))
    return [
        Sighting(run_id, number, source, fmt, key, RecordOutcome(outcome), seen_at)
        for run_id, number, source, fmt, key, outcome, seen_at in rows
    ]


def run_numbers(session: Session, run_ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, int]:
    """Runs' numbers ("import #N") by id, in one query for a whole page."""
    ids = {i for i in run_ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(
        select(ImportRun.id, ImportRun.number).where(ImportRun.id.in_(ids))).tuples().all())
