"""The review queue (SPEC §3 "Conflict", §5 `/conflicts`): list, compare and resolve the items
matching could not decide alone. One service for the web UI and the API; the queue's reading
(the list and its cursor, one item, the open count, neighbours) is `review_queue`, re-exported.

    page = conflicts.list_conflicts(session, status=ConflictStatus.open, kind=None)
    review = conflicts.compare(session, conflict)       # Field | Current | Incoming
    conflicts.resolve(session, actor, conflict.id, "merge", {"owner": "incoming"})

Three kinds of item, three meanings of the actions:

| item | merge | create | dismiss |
|---|---|---|---|
| possible duplicate of an incoming record | the chosen incoming values go to the candidate; the record's sightings join it | a new asset from the record | nothing changes |
| possible duplicate of two existing assets (`duplicate_id`) | `merge_assets`: the duplicate goes into the candidate | refused: both exist | they stay apart |
| field conflict | the fields chosen `incoming` are written | refused | current values stay |

A field choice is `current` or `incoming`. By default a merge takes an incoming value only where
the current one is empty (a field conflict: takes nothing), so a bulk merge never overwrites
data. Every resolution, with the asset changes it makes, is one transaction with its audit
events: `resolve` on the conflict, `update`/`create`/`merge` on the assets.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from webapp.models import (
    Asset,
    AssetIdentifier,
    AuditAction,
    Conflict,
    ConflictKind,
    ConflictStatus,
    ImportRecord,
    ImportRun,
)
from webapp.models.base import utcnow
from webapp.services import assets, audit, crypto, policy_results, relationships
from webapp.services.actor import Actor
from webapp.services.errors import InvalidState, NotFound, ValidationFailed
from webapp.services.review_queue import (  # noqa: F401 (the queue's reading, re-exported)
    LIMIT_MAX,
    ConflictPage,
    Neighbours,
    QueueRow,
    _uuid,
    cached_open_count,
    decode_cursor,
    encode_cursor,
    get,
    list_conflicts,
    neighbours,
    open_count,
    run_by_number,
    why_not_merged,
)

ENTITY = "conflict"
ACTIONS = ("merge", "create", "dismiss")
CHOICES = ("current", "incoming")
RESULT = {"merge": ConflictStatus.merged, "create": ConflictStatus.created,
          "dismiss": ConflictStatus.dismissed}
# fields compared side by side; `source` and `confidence` describe the record, not the database
COMPARED = tuple(f for f in assets.FIELDS if f not in ("source", "confidence", "connection_string"))
# merging two assets keeps both assets' values of these (their union), whatever the choice
COMBINED = ("tags", "aliases")
BULK_MAX = 200
SECRET_SHOWN = "(set, hidden)"


# --- comparing ------------------------------------------------------------------------------

def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _normalised(name: str, value: Any) -> Any:
    """A value as the assets service would store it, in JSON form (incoming records and stored
    pairs may spell it differently, e.g. tags in another order); as given when it is invalid."""
    try:
        value = assets.FIELDS[name](value)
    except (ValueError, KeyError):
        return value
    if name in assets.NOT_NULL_DEFAULTS and value is None:
        value = assets.NOT_NULL_DEFAULTS[name]
    if isinstance(value, datetime):
        value = value.astimezone(UTC)  # as the database gives it back
    return audit.jsonable(value)


@dataclass(frozen=True)
class FieldRow:
    """One line of the side-by-side table."""

    field: str
    current: Any
    incoming: Any
    differs: bool
    # a reviewer may take the incoming value (it differs and is not empty)
    choosable: bool
    default: str
    # merging two assets combines both values of this field (tags, aliases)
    combined: bool = False


@dataclass
class Comparison:
    conflict: Conflict
    candidate: Asset | None
    duplicate: Asset | None
    run: ImportRun | None
    rows: list[FieldRow] = field(default_factory=list)

    @property
    def differing(self) -> list[FieldRow]:
        return [r for r in self.rows if r.differs]

    @property
    def choosable(self) -> dict[str, FieldRow]:
        return {r.field: r for r in self.rows if r.choosable}

    @property
    def can_create(self) -> bool:
        return can_create(self.conflict)

    @property
    def candidate_gone(self) -> bool:
        return self.candidate is None or self.candidate.deleted_at is not None

    def defaults(self) -> dict[str, str]:
        return {r.field: r.default for r in self.rows if r.choosable}


def can_create(conflict: Conflict) -> bool:
    """`Create new` applies to a possible duplicate of an incoming record only."""
    return conflict.kind == ConflictKind.possible_duplicate and conflict.duplicate_id is None


def _value(asset: Asset | None, name: str) -> Any:
    if asset is None:
        return None
    if name == "connection_string":
        return SECRET_SHOWN if asset.has_connection_string else None
    return audit.jsonable(assets.field_value(asset, name))


def compare(session: Session, conflict: Conflict) -> Comparison:
    """Current against incoming values, field by field, with each field's default choice.

    Current values are read now (not when the item was opened), so a change made meanwhile
    shows, and a field that now agrees is no longer a difference."""
    candidate = session.get(Asset, conflict.candidate_id) if conflict.candidate_id else None
    duplicate = session.get(Asset, conflict.duplicate_id) if conflict.duplicate_id else None
    run = session.get(ImportRun, conflict.import_run_id) if conflict.import_run_id else None
    return _compared(conflict, candidate, duplicate, run)


def differences(session: Session, items: Iterable[Conflict]) -> dict[uuid.UUID, list[FieldRow]]:
    """Each item's differing fields (current → incoming), for the queue's rows: the items'
    assets are read in one query (their tags in one more), never one per item."""
    items = list(items)
    wanted = {i for c in items for i in (c.candidate_id, c.duplicate_id) if i is not None}
    found = {a.id: a for a in session.scalars(select(Asset).where(Asset.id.in_(wanted)))} if wanted else {}
    # a value the other side lacks is no question (a merge keeps it): only values to choose
    return {
        c.id: [r for r in _compared(c, found.get(c.candidate_id) if c.candidate_id else None,
                                    found.get(c.duplicate_id) if c.duplicate_id else None,
                                    None).differing if not _empty(r.incoming)]
        for c in items
    }


def _compared(conflict: Conflict, candidate: Asset | None, duplicate: Asset | None,
              run: ImportRun | None) -> Comparison:
    review = Comparison(conflict, candidate, duplicate, run)
    field_conflict = conflict.kind == ConflictKind.field_conflict
    if field_conflict:
        pairs = {f: (_value(candidate, f), _normalised(f, pair[1]))
                 for f, pair in (conflict.fields or {}).items() if f in assets.FIELDS}
    elif duplicate is not None:
        pairs = {f: (_value(candidate, f), _value(duplicate, f))
                 for f in (*COMPARED, "connection_string")}
    else:
        incoming = conflict.incoming or {}
        pairs = {f: (_value(candidate, f), _normalised(f, incoming[f]) if f in incoming else None)
                 for f in COMPARED}
    for name, (current, incoming) in pairs.items():
        if not field_conflict and _empty(current) and _empty(incoming):
            continue
        combined = duplicate is not None and name in COMBINED
        differs = incoming is not None and current != incoming and not (
            _empty(current) and _empty(incoming))
        choosable = differs and not _empty(incoming) and not combined
        default = "incoming" if choosable and not field_conflict and _empty(current) else "current"
        review.rows.append(FieldRow(name, current, incoming, differs, choosable, default, combined))
    return review


def _choices(review: Comparison, fields: dict[str, Any] | None) -> dict[str, str]:
    """The reviewer's choices over the defaults, checked: {field: "current"|"incoming"} for
    every choosable field. Keeping a current value is always allowed."""
    if fields is not None and not isinstance(fields, dict):
        raise ValidationFailed({"fields": "Send an object of {field: \"current\" or \"incoming\"}."})
    errors: dict[str, str] = {}
    chosen = review.defaults()
    rows = {r.field: r for r in review.rows}
    field_conflict = review.conflict.kind == ConflictKind.field_conflict
    for name, choice in (fields or {}).items():
        row = rows.get(name)
        if choice not in CHOICES:
            errors[name] = "Choose “current” or “incoming”."
        elif name not in COMPARED and name != "connection_string":
            errors[name] = "Unknown field."
        elif field_conflict and row is None:
            errors[name] = "This item does not ask about this field."
        elif name in chosen:
            chosen[name] = choice
        elif choice == "current" or (row is not None and not row.differs):
            continue  # nothing to change
        elif row is not None and row.combined:
            errors[name] = "Both assets' values are kept; there is nothing to choose."
        else:
            errors[name] = "There is no incoming value to take."
    if errors:
        raise ValidationFailed(errors, "Some field choices are not valid.")
    return chosen


# --- resolving ------------------------------------------------------------------------------

def _locked(session: Session, conflict_id: uuid.UUID | str) -> Conflict:
    """The item, re-read under a row lock (PostgreSQL): two reviewers resolving it at once
    resolve it once."""
    conflict = session.scalar(
        select(Conflict).where(Conflict.id == _uuid(conflict_id))
        .with_for_update().execution_options(populate_existing=True)
    )
    if conflict is None:
        raise NotFound("No such review item.")
    return conflict


def _live(asset: Asset | None, role: str) -> Asset:
    """The asset a merge writes to, or a clear 409 when it left meanwhile."""
    if asset is None:
        raise InvalidState(f"The {role} asset no longer exists (it was purged); dismiss this item.")
    if asset.merged_into is not None:
        raise InvalidState(
            f"The {role} asset “{asset.name}” was merged into another asset ({asset.merged_into}) "
            "after this item was opened; dismiss this item, or review the surviving asset."
        )
    if asset.deleted_at is not None:
        raise InvalidState(
            f"The {role} asset “{asset.name}” was moved to the trash after this item was opened; "
            "restore it first, or dismiss this item."
        )
    return asset


def resolve(
    session: Session,
    actor: Actor,
    conflict_id: uuid.UUID | str,
    action: str,
    fields: dict[str, Any] | None = None,
    *,
    expected_status: ConflictStatus = ConflictStatus.open,
) -> Conflict:
    """Resolve one item with `merge`, `create` or `dismiss` (see the module's table), with
    per-field choices {field: "current"|"incoming"} over the defaults.

    NotFound (404) for an unknown item; InvalidState (409) when it is not `expected_status`
    (already resolved) or its asset left meanwhile; ValidationFailed (422) for an unknown
    action, field or choice, or an action that does not apply. Nothing is written then.
    """
    try:
        conflict = _resolve(session, actor, conflict_id, action, fields, expected_status)
        assets.commit_change(session)
    except Exception:
        session.rollback()
        raise
    return conflict


def _resolve(
    session: Session,
    actor: Actor,
    conflict_id: uuid.UUID | str,
    action: str,
    fields: dict[str, Any] | None,
    expected_status: ConflictStatus,
) -> Conflict:
    if action not in ACTIONS:
        raise ValidationFailed({"action": "Choose merge, create or dismiss."})
    conflict = _locked(session, conflict_id)
    if conflict.status != expected_status:
        who = f" on {conflict.resolved_at:%Y-%m-%d %H:%M} UTC" if conflict.resolved_at else ""
        raise InvalidState(f"This item was already resolved ({conflict.status.value}{who}); "
                           "nothing was changed.")
    review = compare(session, conflict)
    chosen = _choices(review, fields)
    if action == "create" and not review.can_create:
        if conflict.duplicate_id is not None:
            raise ValidationFailed({"action": "Both assets already exist, so there is nothing to "
                                              "create; Dismiss keeps them apart."})
        raise ValidationFailed({"action": "A field conflict is about an existing asset; choose "
                                          "Merge or Dismiss."})
    result: uuid.UUID | None = None
    taken = {f: c for f, c in chosen.items() if c == "incoming"}
    if action == "merge":
        candidate = _live(review.candidate, "candidate")
        if conflict.duplicate_id is not None:
            _live(review.duplicate, "duplicate")
            merge_assets(session, actor, survivor_id=candidate.id, other_id=conflict.duplicate_id,
                         fields=chosen, commit=False)
        else:
            data = {f: review.choosable[f].incoming for f in taken}
            if data:
                # a reviewer is a manual actor: the fields taken are marked `manual` (and locked)
                assets.update(session, actor, candidate.id, data, expected_version=None,
                              commit=False, message=f"review item {conflict.id} merged")
            _link_records(session, conflict, candidate.id)
        result = candidate.id
    elif action == "create":
        incoming = conflict.incoming or {}
        data = {f: incoming[f] for f in assets.FIELDS if f in incoming and f != "connection_string"}
        if review.run is not None:
            data["source"] = review.run.source
        created = assets.create(session, actor, data, commit=False)
        _link_records(session, conflict, created.id)
        result = created.id
    old_status = conflict.status
    conflict.status = RESULT[action]
    conflict.result_asset_id = result
    conflict.resolved_by = actor.user_id
    conflict.resolved_at = utcnow()
    conflict.resolution = {"action": action, "fields": chosen if action == "merge" else {}}
    session.flush()
    audit.record(session, actor, AuditAction.resolve, ENTITY, conflict.id, {
        "status": [old_status.value, conflict.status.value],
        "resolution": [None, conflict.resolution],
        "result_asset_id": [None, result],
    }, message=f"{conflict.kind.value.replace('_', ' ')} {conflict.record_key or ''}".strip())
    return conflict


def _link_records(session: Session, conflict: Conflict, asset_id: uuid.UUID) -> None:
    """The flagged records of this item become sightings of the asset it ended in."""
    session.execute(
        update(ImportRecord)
        .where(ImportRecord.conflict_id == conflict.id, ImportRecord.asset_id.is_(None))
        .values(asset_id=asset_id)
        .execution_options(synchronize_session=False)
    )
    if conflict.import_run_id is None:
        return
    run = session.get(ImportRun, conflict.import_run_id)
    if run is None or run.dry_run:
        return
    seen = run.started_at or run.created_at
    # bookkeeping, as an import does for an asset it saw: no version, no audit event
    table = Asset.__table__
    session.execute(
        update(table).where(table.c.id == asset_id).values(
            first_seen_at=func.coalesce(table.c.first_seen_at, seen),
            last_seen_at=case((or_(table.c.last_seen_at.is_(None), table.c.last_seen_at < seen), seen),
                              else_=table.c.last_seen_at),
            last_import_id=case((or_(table.c.last_seen_at.is_(None), table.c.last_seen_at <= seen),
                                 run.id), else_=table.c.last_import_id),
            # a sighting after a covering scan's miss undoes the miss (SPEC §6)
            missed_since=case((table.c.missed_since < seen, None), else_=table.c.missed_since),
            updated_at=table.c.updated_at,
        )
    )
    policy_results.touch(session, [asset_id])  # seen by discovery: staleness and verification


def dismiss_for_run(session: Session, actor: Actor, run_id: uuid.UUID, *, reason: str,
                    change_set_id: uuid.UUID | None = None) -> int:
    """Dismiss every open item an import run raised (its undo), with `reason` in the
    resolution; one `resolve` event each, carrying `change_set_id`, in the caller's
    transaction. Returns how many were dismissed."""
    found = list(session.execute(
        select(Conflict.id, Conflict.kind, Conflict.record_key)
        .where(Conflict.import_run_id == run_id, Conflict.status == ConflictStatus.open)
        .with_for_update()
    ).tuples())
    if not found:
        return 0
    resolution = {"action": "dismiss", "fields": {}, "reason": reason}
    session.execute(
        update(Conflict).where(Conflict.import_run_id == run_id, Conflict.status == ConflictStatus.open)
        .values(status=ConflictStatus.dismissed, resolution=resolution, resolved_by=actor.user_id,
                resolved_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    audit.record_many(session, actor, [
        audit.Entry(AuditAction.resolve, ENTITY, conflict_id, {
            "status": [ConflictStatus.open.value, ConflictStatus.dismissed.value],
            "resolution": [None, resolution], "result_asset_id": [None, None]},
            message=f"{ConflictKind(kind).value.replace('_', ' ')} {key or ''}".strip())
        for conflict_id, kind, key in found
    ], change_set_id=change_set_id)
    return len(found)


# --- merging two assets ---------------------------------------------------------------------

def merge_assets(
    session: Session,
    actor: Actor,
    *,
    survivor_id: uuid.UUID | str,
    other_id: uuid.UUID | str,
    fields: dict[str, str] | None = None,
    commit: bool = True,
) -> Asset:
    """Merge `other` into `survivor`: the survivor takes the other's value of each field chosen
    "incoming" (default: only where its own is empty) and keeps both assets' tags and aliases
    (the other's host becomes an alias); the other's identifiers, sightings and review items
    move to the survivor; the other is soft-deleted with `merged_into` = survivor. Each asset
    gets one `merge` audit event with its changes.

    InvalidState (409) when either asset is deleted or merged away; ValidationFailed (422) for
    an asset merged into itself or a bad choice.
    """
    survivor = _live(session.get(Asset, _uuid(survivor_id, "asset")), "surviving")
    other = _live(session.get(Asset, _uuid(other_id, "asset")), "other")
    if survivor.id == other.id:
        raise ValidationFailed({"other_id": "An asset cannot be merged into itself."})
    pairs = {f: (_value(survivor, f), _value(other, f)) for f in (*COMPARED, "connection_string")}
    errors = {name: "Choose “current” or “incoming”." if choice not in CHOICES else "Unknown field."
              for name, choice in (fields or {}).items()
              if choice not in CHOICES or name not in pairs}
    if errors:
        raise ValidationFailed(errors, "Some field choices are not valid.")
    data: dict[str, Any] = {}
    for name, (mine, theirs) in pairs.items():
        if name in COMBINED or _empty(theirs) or mine == theirs:
            continue
        choice = (fields or {}).get(name) or ("incoming" if _empty(mine) else "current")
        if choice == "incoming":
            data[name] = theirs
    if "connection_string" in data:
        data["connection_string"] = crypto.decrypt(session, other.connection_string_encrypted or "")
    tags = sorted({*pairs["tags"][0], *pairs["tags"][1]})
    if tags != pairs["tags"][0]:
        data["tags"] = tags
    host = data.get("host", survivor.host)
    aliases = [a for a in dict.fromkeys([*(survivor.aliases or []), other.host, *(other.aliases or []),
                                         *([survivor.host] if "host" in data else [])])
               if a and a != host]
    if aliases != list(survivor.aliases or []):
        data["aliases"] = aliases
    moved_keys = list(session.scalars(
        select(AssetIdentifier.key).where(AssetIdentifier.asset_id == other.id)))
    assets.merge_away(session, actor, other.id, survivor.id,
                      release_cloud_id="cloud_resource_id" in data, commit=False)
    before = survivor.version
    assets.update(session, actor, survivor.id, data, expected_version=None,
                  action=AuditAction.merge, message=f"merged “{other.name}” into this asset",
                  extra_changes={"merged_from": [None, other.id]},
                  commit=False)
    if survivor.version == before:  # nothing to take: the merge is still the survivor's event
        audit.record(session, actor, AuditAction.merge, assets.ENTITY, survivor.id,
                     {"merged_from": [None, other.id]},
                     message=f"merged “{other.name}” into this asset")
    _move_identifiers(session, other.id, survivor.id, moved_keys)
    session.execute(
        update(ImportRecord).where(ImportRecord.asset_id == other.id).values(asset_id=survivor.id)
        .execution_options(synchronize_session=False)
    )
    _move_conflicts(session, other.id, survivor.id)
    relationships.move(session, actor, other.id, survivor.id)
    if commit:
        assets.commit_change(session)
    return survivor


def _move_identifiers(session: Session, other_id: uuid.UUID, survivor_id: uuid.UUID,
                      keys: list[str]) -> None:
    """The other's strong identifiers (its cloud id, endpoints) now find the survivor, so the
    next import of either record matches it."""
    own = set(session.scalars(
        select(AssetIdentifier.key).where(AssetIdentifier.asset_id == survivor_id)))
    session.execute(
        AssetIdentifier.__table__.delete().where(AssetIdentifier.asset_id == other_id))
    new = [{"key": k, "asset_id": survivor_id} for k in dict.fromkeys(keys) if k not in own]
    if new:
        session.execute(insert(AssetIdentifier), new)


def _move_conflicts(session: Session, other_id: uuid.UUID, survivor_id: uuid.UUID) -> None:
    """Review items about the other are now about the survivor, except those between the two
    (they would compare the survivor with itself; they stay as they are)."""
    session.execute(
        update(Conflict)
        .where(Conflict.candidate_id == other_id,
               or_(Conflict.duplicate_id.is_(None), Conflict.duplicate_id != survivor_id))
        .values(candidate_id=survivor_id)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Conflict)
        .where(Conflict.duplicate_id == other_id,
               or_(Conflict.candidate_id.is_(None), Conflict.candidate_id != survivor_id))
        .values(duplicate_id=survivor_id)
        .execution_options(synchronize_session=False)
    )
