"""Closing review items that no longer need a person (SPEC §6): field conflicts raised only
because a higher-precedence source outranked the record's value. Such a disagreement is now an
observation (shown on the asset's Sources tab), so the open item is closed as `superseded`,
one `resolve` audit event each, and its incoming values are kept as the run's observations
(unless the source has reported since).

An item still needs a person, and stays open, when one of its fields is locked (a person set
it) and the incoming value really differs, or when it is any other kind of disagreement (two
records of one run). Run by `flask --app webapp conflicts supersede`; running it again finds
nothing to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from webapp.models import (
    Asset,
    AuditAction,
    Conflict,
    ConflictKind,
    ConflictStatus,
    ImportRun,
    Observation,
)
from webapp.models.base import utcnow
from webapp.services import audit, bulk, matching, observations
from webapp.services import settings as settings_service
from webapp.services.actor import Actor

ENTITY = "conflict"
# the reasons the pipeline gave (webapp/services/pipeline/conflicts.py, before observations)
OUTRANKED = re.compile(r"^(?P<field>\w+) was set by .+, which outranks .+$")
LOCKED = re.compile(r"^(?P<field>\w+) is locked: a person set it$")
REASON = "Only a higher-precedence source disagreed: kept as an observation (Sources tab), no decision needed."


def needs_person(fields: Mapping[str, Any], reasons: Iterable[str], locked: Iterable[str]) -> bool:
    """Whether a field conflict (`fields`: `{field: [current, incoming]}`) still needs a
    person, given the asset's `locked` fields now."""
    locked = set(locked)
    for reason in reasons:
        if OUTRANKED.match(reason):
            continue
        match = LOCKED.match(reason)
        if match is None:
            return True  # another kind of disagreement (two records of one run)
        name = match["field"]
        pair = fields.get(name)
        if name in locked and pair is not None and not observations.equivalent(name, pair[0], pair[1]):
            return True
    return False


def supersede_observed(session: Session, actor: Actor) -> int:
    """Close the open field conflicts that are now observations (see the module's
    docstring), in one transaction with their audit events; return how many."""
    rows = session.execute(
        select(Conflict.id, Conflict.candidate_id, Conflict.fields, Conflict.reasons, Conflict.record_key,
               Conflict.import_run_id, Conflict.created_at, Asset.locked_fields, ImportRun.source,
               ImportRun.format)
        .join(Asset, Asset.id == Conflict.candidate_id)
        .outerjoin(ImportRun, ImportRun.id == Conflict.import_run_id)
        .where(Conflict.kind == ConflictKind.field_conflict, Conflict.status == ConflictStatus.open)
        .order_by(Conflict.created_at)
        .with_for_update(of=Conflict)
    ).all()
    chosen = [r for r in rows if not needs_person(r.fields or {}, r.reasons or [], r.locked_fields or [])]
    if not chosen:
        session.rollback()
        return 0
    now = utcnow()
    resolution = {"action": "supersede", "fields": {}, "reason": REASON}
    ids = [r.id for r in chosen]
    for start in range(0, len(ids), observations.IN_CHUNK):
        session.execute(
            update(Conflict).where(bulk.among(session, Conflict.id, ids[start : start + observations.IN_CHUNK]))
            .values(status=ConflictStatus.superseded, resolution=resolution, resolved_by=actor.user_id,
                    resolved_at=now)
            .execution_options(synchronize_session=False)
        )
    audit.record_many(session, actor, [
        audit.Entry(AuditAction.resolve, ENTITY, r.id, {
            "status": [ConflictStatus.open.value, ConflictStatus.superseded.value],
            "resolution": [None, resolution]},
            message=f"field conflict {r.record_key or ''}".strip() + ": superseded by an observation")
        for r in chosen
    ])
    _keep_observations(session, chosen)
    session.commit()
    return len(chosen)


def _keep_observations(session: Session, chosen: list[Any]) -> None:
    """The incoming values of the closed items, as what their runs' sources reported (a
    later report of the same source, already kept, wins)."""
    values = settings_service.all_settings(session)
    known = {*values["source_precedence"], *values["business_source_precedence"]}
    rows: dict[tuple[Any, str, str], dict[str, Any]] = {}
    for r in chosen:
        if r.import_run_id is None:
            continue
        source = matching.source_kind(r.source, r.format, known)
        for name, pair in (r.fields or {}).items():
            if name in observations.NOT_OBSERVED or not isinstance(pair, list) or len(pair) != 2 or pair[1] is None:
                continue
            rows[(r.candidate_id, name, source)] = {
                "asset_id": r.candidate_id, "field": name, "source": source, "import_run_id": r.import_run_id,
                "reported_by": None, "value": pair[1], "seen_at": r.created_at,
            }
    bulk.insert_ignoring_conflicts(session, Observation.__table__, list(rows.values()), observations.KEY)
