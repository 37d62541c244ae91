"""Asset changes: create, update, delete, restore, purge, tags and the connection secret.

Every function takes an `Actor`, validates, writes its audit event and commits, so the web UI,
the API, the CLI and import jobs share one code path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, load_only, noload
from sqlalchemy.orm.exc import StaleDataError

from webapp.models import (
    Asset,
    AssetStatus,
    AuditAction,
    AuditEvent,
    Environment,
    ImportRecord,
    Observation,
    Proposal,
    Tag,
)
from webapp.models.base import utcnow
from webapp.services import audit, bulk, crypto, identifiers, observations, relationships
from webapp.services.actor import Actor
from webapp.services.asset_validation import (  # noqa: F401 (re-exported)
    ATTRIBUTE,
    EMPTY,
    FIELDS,
    METADATA_MAX_DEPTH,
    NOT_NULL_DEFAULTS,
    _tags,
    validate,
)
from webapp.services.errors import InvalidState, NotFound, StaleVersion, ValidationFailed
from webapp.services.text import UNSTORABLE, UNSTORABLE_MESSAGE, storable  # noqa: F401 (re-exported)

ENTITY = "asset"
SEARCHED = ("name", "host", "database_name", "owner")
# audit events never hold the secret, so a revert cannot bring an old one back
UNREVERTABLE = frozenset({"connection_string"})
# fields a manual edit changes without locking them against discovery
UNLOCKED = frozenset({"tags", "notes", "connection_string"})


# --- reading --------------------------------------------------------------------------------

def get(session: Session, asset_id: uuid.UUID | str, *, include_deleted: bool = True,
        only: tuple[Any, ...] = ()) -> Asset:
    """The asset (a 404 when there is none). `only`: the attributes a page shows, loaded alone
    (no tags, no JSON columns); any other is loaded when first read, as a lazy attribute is."""
    try:
        key = asset_id if isinstance(asset_id, uuid.UUID) else uuid.UUID(str(asset_id))
    except ValueError:
        raise NotFound("No such asset.") from None
    options = [load_only(*only), noload(Asset.tags)] if only else []
    asset = session.get(Asset, key, options=options)
    if asset is None or (asset.deleted_at is not None and not include_deleted):
        raise NotFound("No such asset.")
    return asset


def field_value(asset: Asset, field: str) -> Any:
    if field == "tags":
        return [t.name for t in asset.tags]
    if field == "connection_string":
        return asset.connection_string_encrypted
    return getattr(asset, ATTRIBUTE.get(field, field))


def snapshot(asset: Asset) -> dict[str, Any]:
    """Every field's JSON value (the connection string masked)."""
    values = {f: audit.jsonable(field_value(asset, f)) for f in FIELDS}
    values["connection_string"] = audit.MASK if asset.has_connection_string else None
    return values


def search_text(asset: Asset) -> str:
    values = {f: getattr(asset, f) for f in SEARCHED}
    return search_text_of(values, asset.aliases or [], [t.name for t in asset.tags])


def search_text_of(values: Mapping[str, Any], aliases: Iterable[str], tags: Iterable[str]) -> str:
    """The lower-cased text the list's search box looks in (kept in `assets.search_text`)."""
    parts = [values.get(f) or "" for f in SEARCHED]
    parts += [*aliases, *tags]
    return " ".join(p for p in parts if p).lower()


def versions(session: Session, asset: Asset) -> list[tuple[int, dict[str, Any]]]:
    """Every version of the asset with its full field values, oldest first, from the audit log.

    Values are as the audit log holds them (JSON forms; the connection string masked).
    """
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.entity_type == ENTITY, AuditEvent.entity_id == str(asset.id))
        .order_by(AuditEvent.id)
    )
    state: dict[str, Any] = {f: EMPTY.get(f) for f in FIELDS}
    result: list[tuple[int, dict[str, Any]]] = []
    for event in events:
        seen = event.changes.get("version")
        if not seen or seen[1] is None:
            continue
        for field, (_old, new) in event.changes.items():
            if field in state:
                state[field] = new
        result.append((seen[1], dict(state)))
    return result


def state_at(session: Session, asset: Asset, version: int) -> dict[str, Any]:
    """The asset's field values at `version` (NotFound when the log has no such version)."""
    for number, values in versions(session, asset):
        if number == version:
            return values
    raise NotFound(f"Version {version} of this asset is not in its history.")


def changes_since(session: Session, asset: Asset, version: int) -> dict[str, list[Any]]:
    """What others changed after `version`: {field: [value then, value now]}."""
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.entity_type == ENTITY, AuditEvent.entity_id == str(asset.id))
        .order_by(AuditEvent.id)
    )
    merged: dict[str, list[Any]] = {}
    for event in events:
        seen = event.changes.get("version")
        if not seen or seen[1] is None or seen[1] <= version:
            continue
        for field, (old, new) in event.changes.items():
            if field == "version":
                continue
            merged.setdefault(field, [old, new])[1] = new
    return {f: pair for f, pair in merged.items() if pair[0] != pair[1]}


# --- writing --------------------------------------------------------------------------------

def _tags_by_name(session: Session, names: Iterable[str]) -> list[Tag]:
    names = sorted(set(names))
    if not names:
        return []
    tag_ids(session, names)
    return list(session.scalars(select(Tag).where(Tag.name.in_(names)).order_by(Tag.name)))


def tag_ids(session: Session, names: Iterable[str], chunk: int = 5000) -> dict[str, int]:
    """The ids of tags by name, creating the missing ones race-free (two writers adding the same
    new tag both succeed: insert-or-skip on the unique name, then read)."""
    table = Tag.__table__
    names = sorted(set(names))
    found: dict[str, int] = {}
    for start in range(0, len(names), chunk):
        part = names[start : start + chunk]
        found.update(session.execute(
            select(table.c.name, table.c.id).where(table.c.name.in_(part))).tuples().all())
        missing = [n for n in part if n not in found]
        if missing:
            bulk.insert_ignoring_conflicts(
                session, table, [{"name": n, "colour": "#6b7280"} for n in missing], ["name"])
            found.update(session.execute(
                select(table.c.name, table.c.id).where(table.c.name.in_(missing))).tuples().all())
    return found


def _check_unique_cloud_id(session: Session, value: str | None, own_id: uuid.UUID | None) -> None:
    if value is None:
        return
    clash = session.scalar(select(Asset.id).where(Asset.cloud_resource_id == value))
    if clash is not None and clash != own_id:
        raise ValidationFailed({"cloud_resource_id": "Another asset already has this cloud resource id."})


def _apply(session: Session, asset: Asset, cleaned: dict[str, Any]) -> dict[str, list[Any]]:
    """Set fields on the asset; return the diff {field: [old, new]} of what really changed."""
    with session.no_autoflush:  # one UPDATE (one version bump) per change, not one per query
        return _apply_fields(session, asset, cleaned)


def _apply_fields(session: Session, asset: Asset, cleaned: dict[str, Any]) -> dict[str, list[Any]]:
    diff: dict[str, list[Any]] = {}
    for field, new in cleaned.items():
        if field == "tags":
            old_names = [t.name for t in asset.tags]
            if old_names != new:
                asset.tags = _tags_by_name(session, new)
                diff["tags"] = [old_names, new]
        elif field == "connection_string":
            old_token = asset.connection_string_encrypted
            old_plain = crypto.decrypt(session, old_token) if old_token else None
            if old_plain != new:
                asset.connection_string_encrypted = crypto.encrypt(session, new) if new else None
                diff["connection_string"] = [old_plain, new]  # masked by audit.record
        else:
            attr = ATTRIBUTE.get(field, field)
            old = getattr(asset, attr)
            if audit.jsonable(old) != audit.jsonable(new):
                setattr(asset, attr, new)
                diff[field] = [old, new]
    if diff:
        asset.search_text = search_text(asset)
    return diff


def create(session: Session, actor: Actor, data: dict[str, Any], *, commit: bool = True) -> Asset:
    """Create an asset from validated fields; audited as `create`.

    `commit=False` leaves the asset and its event flushed in the caller's transaction (a
    review-queue resolution commits them together with its own event)."""
    cleaned = validate(data, partial=False)
    _check_unique_cloud_id(session, cleaned.get("cloud_resource_id"), None)
    asset = Asset(
        id=uuid.uuid4(),
        name=cleaned["name"],
        engine=cleaned["engine"],
        environment=Environment.unknown,
        status=AssetStatus.active,
        source="manual",
        aliases=[],
        metadata_={},
        locked_fields=[],
        created_by=actor.user_id,
        updated_by=actor.user_id,
    )
    asset.tags = []
    session.add(asset)
    _apply(session, asset, cleaned)
    asset.search_text = search_text(asset)
    session.flush()
    _refresh_identifiers(session, asset)
    diff: dict[str, list[Any]] = {
        f: [None, v] for f, v in snapshot(asset).items() if v not in (None, [], {})
    }
    diff["version"] = [None, asset.version]
    audit.record(session, actor, AuditAction.create, ENTITY, asset.id, diff)
    if actor.is_manual:  # what a person typed is a report of source `manual` (Sources tab)
        observations.record_manual(session, actor.user_id, asset.id, _new_values(diff), utcnow())
    if commit:
        commit_change(session)
    return asset


def update(
    session: Session,
    actor: Actor,
    asset_id: uuid.UUID | str,
    data: dict[str, Any],
    *,
    expected_version: int | None,
    action: AuditAction = AuditAction.update,
    message: str | None = None,
    extra_changes: dict[str, list[Any]] | None = None,
    commit: bool = True,
) -> Asset:
    """Apply a partial change. A stale `expected_version` raises StaleVersion, losing nothing.

    `action` and `message` describe the audit event (a merge is audited as `merge`);
    `extra_changes` go into it beside the field diff; `commit=False` leaves the change and its
    event flushed in the caller's transaction.
    """
    return _change(session, actor, get(session, asset_id), data, expected_version, action,
                   message=message, extra_changes=extra_changes, commit=commit)


def revert(
    session: Session,
    actor: Actor,
    asset_id: uuid.UUID | str,
    to_version: int,
    *,
    expected_version: int | None,
) -> Asset:
    """Make the record look as it did at `to_version`, as a new audited change (`revert`).

    The connection string is not reverted: audit events never hold secrets.
    """
    asset = get(session, asset_id)
    then = state_at(session, asset, to_version)
    data = {f: then.get(f) for f in FIELDS if f not in UNREVERTABLE}
    return _change(session, actor, asset, data, expected_version, AuditAction.revert,
                   message=f"reverted to version {to_version}")


def _change(
    session: Session,
    actor: Actor,
    asset: Asset,
    data: dict[str, Any],
    expected_version: int | None,
    action: AuditAction,
    message: str | None = None,
    *,
    extra_changes: dict[str, list[Any]] | None = None,
    commit: bool = True,
) -> Asset:
    if asset.deleted_at is not None:
        raise InvalidState("This asset is in the trash. Restore it before editing.")
    if expected_version is not None and asset.version != expected_version:
        raise StaleVersion(asset)
    cleaned = validate(data, partial=True)
    if "cloud_resource_id" in cleaned:
        _check_unique_cloud_id(session, cleaned["cloud_resource_id"], asset.id)
    old_version = asset.version
    diff = _apply(session, asset, cleaned)
    if not diff:
        return asset
    if actor.is_manual:
        locked, sources = manual_marks(asset.locked_fields, asset.field_sources, diff)
        if set(locked) != set(asset.locked_fields or []):
            asset.locked_fields = locked
        asset.field_sources = sources
    asset.updated_by = actor.user_id
    asset.updated_at = utcnow()
    _flush_versioned(session, asset)
    if identifiers.KEY_FIELDS & diff.keys():
        _refresh_identifiers(session, asset)
    diff.update(extra_changes or {})
    diff["version"] = [old_version, asset.version]
    audit.record(session, actor, action, ENTITY, asset.id, diff, message=message)
    if actor.is_manual:
        observations.record_manual(session, actor.user_id, asset.id, _new_values(diff), utcnow())
    if commit:
        commit_change(session)
    return asset


def _new_values(diff: Mapping[str, list[Any]]) -> dict[str, Any]:
    """The asset fields a change set and their new values (not `version` or extra entries)."""
    return {f: pair[1] for f, pair in diff.items() if f in FIELDS}


def manual_marks(
    locked_fields: Iterable[str] | None, field_sources: Mapping[str, Any] | None, changed: Iterable[str]
) -> tuple[list[str], dict[str, Any]]:
    """What a person's edit of the `changed` fields does to an asset's `locked_fields` and
    `field_sources` (the rule every manual change follows: the form, the API, bulk actions and
    their undo): each changed field but tags, notes and the secret is locked against silent
    overwrites by discovery, and each changed field's source becomes `manual`."""
    changed = set(changed)
    locked = sorted(set(locked_fields or []) | (changed - UNLOCKED))
    return locked, {**(field_sources or {}), **dict.fromkeys(sorted(changed), "manual")}


def delete(
    session: Session, actor: Actor, asset_id: uuid.UUID | str, *, expected_version: int | None = None
) -> Asset:
    """Soft delete: the asset moves to the trash."""
    asset = get(session, asset_id)
    if asset.deleted_at is not None:
        raise InvalidState("This asset is already in the trash.")
    if expected_version is not None and asset.version != expected_version:
        raise StaleVersion(asset)
    old_version = asset.version
    asset.deleted_at = utcnow()
    asset.deleted_by = actor.user_id
    _flush_versioned(session, asset)
    audit.record(
        session,
        actor,
        AuditAction.delete,
        ENTITY,
        asset.id,
        {"deleted_at": [None, asset.deleted_at], "version": [old_version, asset.version]},
    )
    commit_change(session)
    return asset


def merge_away(
    session: Session,
    actor: Actor,
    asset_id: uuid.UUID | str,
    survivor_id: uuid.UUID,
    *,
    release_cloud_id: bool = False,
    commit: bool = True,
) -> Asset:
    """The merged-away side of a merge: soft-deleted with `merged_into` set, audited as `merge`.

    `release_cloud_id` clears its cloud resource id (unique) so the survivor can take it.
    """
    asset = get(session, asset_id)
    if asset.deleted_at is not None:
        raise InvalidState(f"“{asset.name}” is already in the trash or merged away.")
    old_version = asset.version
    changes: dict[str, list[Any]] = {"merged_into": [None, survivor_id]}
    if release_cloud_id and asset.cloud_resource_id is not None:
        changes["cloud_resource_id"] = [asset.cloud_resource_id, None]
        asset.cloud_resource_id = None
    asset.deleted_at = utcnow()
    asset.deleted_by = actor.user_id
    asset.merged_into = survivor_id
    _flush_versioned(session, asset)
    if "cloud_resource_id" in changes:
        _refresh_identifiers(session, asset)
    changes["deleted_at"] = [None, asset.deleted_at]
    changes["version"] = [old_version, asset.version]
    audit.record(session, actor, AuditAction.merge, ENTITY, asset.id, changes,
                 message=f"merged into {survivor_id}")
    if commit:
        commit_change(session)
    return asset


def restore(session: Session, actor: Actor, asset_id: uuid.UUID | str) -> Asset:
    """Bring an asset back from the trash."""
    asset = get(session, asset_id)
    if asset.deleted_at is None:
        raise InvalidState("This asset is not in the trash.")
    if asset.cloud_resource_id is not None:
        _check_unique_cloud_id(session, asset.cloud_resource_id, asset.id)
    old_version, old_deleted = asset.version, asset.deleted_at
    asset.deleted_at = None
    asset.deleted_by = None
    _flush_versioned(session, asset)
    audit.record(
        session,
        actor,
        AuditAction.restore,
        ENTITY,
        asset.id,
        {"deleted_at": [old_deleted, None], "version": [old_version, asset.version]},
    )
    commit_change(session)
    return asset


def purge(session: Session, actor: Actor, asset_id: uuid.UUID | str) -> None:
    """Delete a trashed asset for good. Its history stays in the audit log."""
    asset = get(session, asset_id)
    if asset.deleted_at is None:
        raise InvalidState("Only assets in the trash can be purged.")
    last = snapshot(asset)
    changes = {f: [v, None] for f, v in last.items() if v not in (None, [], {})}
    identifiers.forget(session, asset.id)
    relationships.purge_links(session, actor, asset.id)
    session.execute(
        sql_update(ImportRecord).where(ImportRecord.asset_id == asset.id).values(asset_id=None)
    )
    session.execute(sql_delete(Proposal).where(Proposal.asset_id == asset.id))  # SQLite: no cascade
    session.execute(sql_delete(Observation).where(Observation.asset_id == asset.id))
    session.delete(asset)
    audit.record(session, actor, AuditAction.purge, ENTITY, asset.id, changes, message=asset.name)
    commit_change(session)


def add_tag(session: Session, actor: Actor, asset_id: uuid.UUID | str, name: str) -> Asset:
    asset = get(session, asset_id)
    names = [t.name for t in asset.tags]
    try:
        new = _tags([name])
    except ValueError as exc:
        raise ValidationFailed({"tag": str(exc)}) from None
    if not new:
        raise ValidationFailed({"tag": "Enter a tag name."})
    return update(session, actor, asset.id, {"tags": [*names, *new]}, expected_version=None)


def remove_tag(session: Session, actor: Actor, asset_id: uuid.UUID | str, name: str) -> Asset:
    asset = get(session, asset_id)
    names = [t.name for t in asset.tags]
    name = name.strip().lower()  # tags are stored in lower case, as adding one stores it
    if name not in names:
        raise NotFound("This asset has no such tag.")
    return update(
        session, actor, asset.id, {"tags": [n for n in names if n != name]}, expected_version=None
    )


def reveal_connection_string(session: Session, actor: Actor, asset_id: uuid.UUID | str) -> str | None:
    """Decrypt the connection string for an admin; the reveal itself is audited."""
    asset = get(session, asset_id)
    if asset.connection_string_encrypted is None:
        return None
    plain = crypto.decrypt(session, asset.connection_string_encrypted)
    audit.record(session, actor, AuditAction.reveal_secret, ENTITY, asset.id,
                 message="connection_string revealed")
    commit_change(session)
    return plain


def _refresh_identifiers(session: Session, asset: Asset) -> None:
    identifiers.replace(session, [(asset.id, {f: getattr(asset, f) for f in identifiers.KEY_FIELDS})])


def _flush_versioned(session: Session, asset: Asset) -> None:
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        raise StaleVersion(get(session, asset.id)) from None


def commit_change(session: Session) -> None:
    """Commit the caller's transaction, a clash on `cloud_resource_id` as a field error."""
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        if "cloud_resource_id" in str(exc.orig):
            raise ValidationFailed(
                {"cloud_resource_id": "Another asset already has this cloud resource id."}
            ) from None
        raise
