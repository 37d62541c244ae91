"""One batch of a change set (SPEC §5, §11): many assets changed as a person's edit would
change each one, written in bulk.

    result = apply_batch(session, actor, change_set_id, steps, fields=("owner",), since="the preview")

A `Step` names an asset, the version the change set expects it at, and a planner: given the
asset's current state, what it should become (`Wanted`) or why it stays as it is (`Verdict`).
The batch reads the assets, refuses those whose version moved on (a concurrent edit is
reported, never overwritten), applies the rules of a manual edit (`assets.manual_marks`: locks
and field sources; the search text; version + 1) and writes, in the caller's transaction, the
rows (one `UPDATE … FROM` on PostgreSQL that writes only rows still at the version read, so an
edit between the read and the write is refused too, without locking rows first), the tag links
and one audit event per changed asset carrying the change set's id (`audit.record_many`: one
append to the chain). The caller commits.

Bulk actions plan from their parameters; an undo plans from the audit events it reverses.
A bulk action cannot change the fields identifier keys are made of (checked below), so neither
can its undo; an import's undo can (it puts back a host or aliases discovery changed): the
assets whose key fields it changes get their identifier keys rewritten in the same batch.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Text, cast, func, literal, select
from sqlalchemy.dialects.postgresql import aggregate_order_by, array_agg
from sqlalchemy.orm import Session

from webapp.models import Asset, AuditAction, Tag, asset_fields, asset_tags
from webapp.models.base import utcnow
from webapp.services import assets, audit, bulk, identifiers, observations, policy_results
from webapp.services.actor import Actor

ASSETS = Asset.__table__
ENTITY = "asset"
# kept on the change set: refused and failed assets beyond this many are counted, not listed
REPORTED_MAX = 1_000
TAGS_MAX = asset_fields.spec("tags").max_items or 50
# what every batch reads: the bookkeeping a change writes and what the search text is made of
BASE_COLUMNS = ("id", "version", "deleted_at", "deleted_by", "locked_fields", "field_sources",
                "name", "host", "database_name", "owner", "aliases")
TRASH_COLUMNS = frozenset({"deleted_at", "deleted_by"})
# field name -> column name, where they differ (tags live in their own table)
COLUMN = {"metadata": "metadata", "connection_string": "connection_string_encrypted"}
# bulk actions never change a field identification keys are made of (so no re-keying here)
assert not identifiers.KEY_FIELDS & set(asset_fields.BULK_EDITABLE)


@dataclass(frozen=True)
class Wanted:
    """What an asset should become: new values of catalogue fields (tags: the whole list) and
    whether it should be in the trash (None: where it is)."""

    values: dict[str, Any]
    trashed: bool | None = None


@dataclass(frozen=True)
class Verdict:
    """Why an asset is left as it is: `unchanged` (already so), `refused` (a rule says no),
    `failed` (the value does not fit this asset), `locked` (a pending proposal holds it; there
    are no proposals yet, so nothing plans this today)."""

    outcome: str
    reason: str | None = None


Planner = Callable[[dict[str, Any]], Wanted | Verdict]


@dataclass(frozen=True)
class Step:
    asset_id: uuid.UUID
    expected_version: int | None  # None: whatever version it has
    plan: Planner


@dataclass
class BatchResult:
    changed: int = 0
    unchanged: int = 0
    locked: int = 0
    refused: int = 0
    failed: int = 0
    # refused and failed assets: {"asset_id", "name", "reason"}
    reported: list[dict[str, Any]] = field(default_factory=list)

    def report(self, outcome: str, asset_id: uuid.UUID, name: str | None, reason: str | None) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome in ("refused", "failed", "locked"):
            self.reported.append({"asset_id": str(asset_id), "name": name, "reason": reason or outcome})


def column(field_name: str) -> str:
    return COLUMN.get(field_name, field_name)


def apply_batch(
    session: Session,
    actor: Actor,
    change_set_id: uuid.UUID,
    steps: list[Step],
    *,
    fields: Iterable[str],
    since: str,
    action: AuditAction | None = None,
    message: str | None = None,
) -> BatchResult:
    """Apply the steps (see the module's docstring); `fields`: the catalogue fields the
    planners may set (tags are always read); `since`: what an unexpected version is measured
    against ("the preview"), for the refusal's reason; `action`: the audit action of every
    event (default: `delete`, `restore` or `update` by what happened to the asset)."""
    fields = [f for f in dict.fromkeys(fields) if f != "tags"]
    if identifiers.KEY_FIELDS & set(fields):  # the keys are rewritten from all of them
        fields += sorted(identifiers.KEY_FIELDS - set(fields))
    current = load_states(session, [s.asset_id for s in steps], fields)
    result = BatchResult()
    now = utcnow()
    marks = _Marks(actor)
    planned: dict[uuid.UUID, _Planned] = {}
    for step in steps:
        state = current.get(step.asset_id)
        if state is None:
            result.report("refused", step.asset_id, None, "no longer exists (purged)")
            continue
        if step.expected_version is not None and state["version"] != step.expected_version:
            result.report("refused", step.asset_id, state["name"], _moved_on(since, step.expected_version,
                                                                               state["version"]))
            continue
        wanted = step.plan(state)
        if isinstance(wanted, Verdict):
            result.report(wanted.outcome, step.asset_id, state["name"], wanted.reason)
            continue
        change = _change(state, wanted, fields, marks, now)
        if change is None:
            result.report("unchanged", step.asset_id, state["name"], None)
            continue
        planned[step.asset_id] = change
    if not planned:
        return result
    rows = [p.row for p in planned.values()]
    if not any("deleted_at" in p.changes for p in planned.values()):
        # nothing goes in or out of the trash: leave those columns out of the write
        rows = [{k: v for k, v in row.items() if k not in TRASH_COLUMNS} for row in rows]
    written = set(bulk.update_rows(session, ASSETS, rows, versioned=True))
    added: list[tuple[uuid.UUID, str]] = []
    removed: list[tuple[uuid.UUID, str]] = []
    events: list[audit.Entry] = []
    rekeyed: list[tuple[uuid.UUID, dict[str, Any]]] = []
    for asset_id, change in planned.items():
        if asset_id not in written:  # edited between this batch's read and its write
            state = current[asset_id]
            result.report("refused", asset_id, state["name"], _moved_on(since, state["version"], None))
            continue
        if change.keys is not None:
            rekeyed.append((asset_id, change.keys))
        added += [(asset_id, n) for n in sorted(set(change.tags_after) - set(change.tags_before))]
        removed += [(asset_id, n) for n in sorted(set(change.tags_before) - set(change.tags_after))]
        events.append(audit.Entry(action or _action(change.changes), ENTITY, asset_id, change.changes,
                                  message, masked=True))
    result.changed += len(events)
    if fields or any("deleted_at" in p.changes for p in planned.values()):
        # what the controls read changed (a tag alone changes no result): recomputed before
        # this batch commits, set-wise
        policy_results.touch(session, written)
    _write_tags(session, added, removed)
    identifiers.replace(session, rekeyed)
    audit.record_many(session, actor, events, change_set_id=change_set_id)
    if actor.is_manual:  # what a person set is a report of source `manual` (Sources tab)
        observations.report(session, {
            (e.entity_id, f): pair[1] for e in events for f, pair in e.changes.items()
            if f in assets.FIELDS and f not in observations.NOT_OBSERVED and pair[1] is not None
        }, source="manual", seen_at=now, reported_by=actor.user_id)
    return result


def _moved_on(since: str, expected: int, now: int | None) -> str:
    return f"changed since {since} (version {expected}, now {now})" if now is not None else \
        f"changed since {since} (after version {expected})"


def _action(changes: dict[str, Any]) -> AuditAction:
    trash = changes.get("deleted_at")
    if trash is None:
        return AuditAction.update
    return AuditAction.delete if trash[1] is not None else AuditAction.restore


# JSON columns read as text and parsed once per distinct value (most assets share their locks
# and sources), instead of once per row
JSON_COLUMNS = frozenset({"aliases", "locked_fields", "field_sources", "metadata"})


def load_states(session: Session, ids: list[uuid.UUID], fields: list[str],
                *where: ColumnElement[bool]) -> dict[uuid.UUID, dict[str, Any]]:
    """The assets' current state by id ({field: value}, `tags`, `deleted`; JSON columns also
    as `<name>_json`, their stored text), of those `where` also picks. On PostgreSQL the tags
    come in the same statement. (A plain Core read: loading as many ORM assets, each with its
    tags, cost ten times as much.)"""
    if not ids:
        return {}
    names = list(dict.fromkeys([*BASE_COLUMNS, *(column(f) for f in fields)]))
    columns: list[Any] = [cast(ASSETS.c[n], Text).label(n) if n in JSON_COLUMNS else ASSETS.c[n] for n in names]
    inline_tags = bulk.is_postgresql(session)
    if inline_tags:
        names.append("tags")
        columns.append(
            select(func.coalesce(array_agg(aggregate_order_by(Tag.name, Tag.name)), literal([], ARRAY(Text))))
            .join(asset_tags, asset_tags.c.tag_id == Tag.id)
            .where(asset_tags.c.asset_id == ASSETS.c.id)
            .scalar_subquery()
        )
    stmt = select(*columns).where(bulk.among(session, ASSETS.c.id, ids), *where)
    # the state's keys: field names (a column named otherwise is renamed)
    keys = [{column(f): f for f in fields}.get(n, n) for n in names]
    json_keys = [(k, f"{k}_json") for k in keys if column(k) in JSON_COLUMNS]
    parsed: dict[str, Any] = {}
    states: dict[uuid.UUID, dict[str, Any]] = {}
    for row in session.execute(stmt).tuples().all():
        state = dict(zip(keys, row, strict=True))
        for key, raw_key in json_keys:
            raw = state[raw_key] = state[key] or "null"
            if raw not in parsed:
                parsed[raw] = json.loads(raw)
            state[key] = copy.deepcopy(parsed[raw]) if key == "metadata" else parsed[raw]
        state["deleted"] = state["deleted_at"] is not None
        if not inline_tags:
            state["tags"] = []
        states[state["id"]] = state
    if states and not inline_tags:
        tags = (
            select(asset_tags.c.asset_id, Tag.name)
            .join(Tag, Tag.id == asset_tags.c.tag_id)
            .where(bulk.among(session, asset_tags.c.asset_id, list(states)))
            .order_by(asset_tags.c.asset_id, Tag.name)
        )
        for asset_id, name in session.execute(tags).tuples().all():
            states[asset_id]["tags"].append(name)
    return states


class _Marks:
    """`assets.manual_marks` for many assets: computed (and serialised) once per distinct
    (locks, sources, changed fields)."""

    def __init__(self, actor: Actor) -> None:
        self.manual = actor.is_manual
        self.user_id = actor.user_id
        self.seen: dict[tuple[str, str, tuple[str, ...]], tuple[bulk.JSONText, bulk.JSONText]] = {}

    def of(self, state: dict[str, Any], changed: tuple[str, ...]) -> tuple[bulk.JSONText, bulk.JSONText]:
        key = (state["locked_fields_json"], state["field_sources_json"], changed if self.manual else ())
        if key not in self.seen:
            locked, sources = state["locked_fields"] or [], state["field_sources"] or {}
            if self.manual and changed:
                locked, sources = assets.manual_marks(locked, sources, changed)
            self.seen[key] = (bulk.JSONText(json.dumps(locked, ensure_ascii=False)),
                              bulk.JSONText(json.dumps(sources, ensure_ascii=False)))
        return self.seen[key]


@dataclass
class _Planned:
    row: dict[str, Any]
    changes: dict[str, Any]
    tags_before: list[str]
    tags_after: list[str]
    keys: dict[str, Any] | None = None  # the key fields' new values, when they changed


def _change(state: dict[str, Any], wanted: Wanted, fields: list[str], marks: _Marks,
            now: datetime) -> _Planned | None:
    """The asset's new row and its audit diff, or None when nothing would change."""
    changes: dict[str, Any] = {}
    after = dict(state)
    for name, new in wanted.values.items():
        old, new_json = audit.jsonable(state[name]), audit.jsonable(new)
        if old != new_json:
            changes[name] = [old, new_json]
            after[name] = new
    trash = wanted.trashed is not None and wanted.trashed != state["deleted"]
    if not changes and not trash:
        return None
    locked, sources = marks.of(state, tuple(sorted(changes)))
    deleted_at, deleted_by = state["deleted_at"], state["deleted_by"]
    if trash:
        deleted_at, deleted_by = (now, marks.user_id) if wanted.trashed else (None, None)
        changes["deleted_at"] = [audit.jsonable(state["deleted_at"]), audit.jsonable(deleted_at)]
    version = state["version"] + 1
    changes["version"] = [state["version"], version]
    row = {
        "id": state["id"], "version": version, "updated_at": now, "updated_by": marks.user_id,
        "locked_fields": locked,
        "field_sources": sources, "deleted_at": deleted_at, "deleted_by": deleted_by,
        "search_text": assets.search_text_of(after, after["aliases"] or [], after["tags"]),
        **{column(f): after[f] for f in fields},
    }
    keys = {f: after[f] for f in identifiers.KEY_FIELDS} if identifiers.KEY_FIELDS & changes.keys() else None
    return _Planned(row, changes, state["tags"], after["tags"], keys)


def _write_tags(
    session: Session, added: list[tuple[uuid.UUID, str]], removed: list[tuple[uuid.UUID, str]]
) -> None:
    """Link and unlink tags (new tag names are created, race-free)."""
    ids = assets.tag_ids(session, {name for _, name in added + removed}) if added or removed else {}
    bulk.insert_rows(session, asset_tags, [{"asset_id": a, "tag_id": ids[n]} for a, n in added])
    by_tag: dict[str, list[uuid.UUID]] = {}
    for asset_id, name in removed:
        by_tag.setdefault(name, []).append(asset_id)
    for name, asset_ids in sorted(by_tag.items()):  # one statement per tag removed (few)
        session.execute(asset_tags.delete().where(
            asset_tags.c.tag_id == ids[name], bulk.among(session, asset_tags.c.asset_id, asset_ids)))
