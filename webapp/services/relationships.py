"""Relationships between assets, and the dependency graph they form (SPEC §3, §5, §7).

Writing: `create`, `delete`, `move` (a merge) and `link_discovered` (an import). Each writes a
`link`/`unlink` audit event on *both* assets in the caller's transaction, so the change shows in
both histories. Relationships are not asset fields: they do not bump an asset's version.

Reading: `listing` and `of_asset` for the pages and the API. The graph (`graph`, `impact`,
`cycle_members`, `graph_json`) is read in `webapp.services.graph`, re-exported here; its
docstring says what the directions mean.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, noload

from webapp.models import (
    Asset,
    AssetIdentifier,
    AssetRelationship,
    AuditAction,
    ImportRecord,
    ImportRun,
    RelationshipKind,
)
from webapp.services import audit, bulk, identifiers
from webapp.services.actor import Actor
from webapp.services.errors import InvalidState, NotFound, ValidationFailed

# The graph is read in `webapp.services.graph`; callers use these as `relationships.graph(...)`.
from webapp.services.graph import (  # noqa: F401
    DEFAULT_DEPTH,
    MAX_DEPTH,
    NODE_LIMIT,
    Graph,
    closes_cycle,
    cycle_members,
    graph,
    graph_dict,
    graph_json,
    impact,
)
from webapp.services.listing import ID, MOMENT, Page, decode_cursor, keyset
from webapp.services.listing import page as keyset_page
from webapp.services.text import UNSTORABLE, UNSTORABLE_MESSAGE, storable

ENTITY = "asset"  # link/unlink events live in the histories of the assets they join
DESCRIPTION_MAX = 500

PHRASE = {
    RelationshipKind.depends_on: "depends on",
    RelationshipKind.replicates_to: "replicates to",
    RelationshipKind.backs_up_to: "backs up to",
    RelationshipKind.feeds: "feeds",
    RelationshipKind.member_of: "is a member of",
}


# --- validation and writing -------------------------------------------------------------------

def _kind(value: Any) -> RelationshipKind:
    try:
        return RelationshipKind(value)
    except ValueError:
        kinds = ", ".join(k.value for k in RelationshipKind)
        raise ValidationFailed({"kind": f"Choose one of: {kinds}."}) from None


def _uuid(value: Any, field_name: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        raise ValidationFailed({field_name: "Choose an asset."}) from None


def asset_named(session: Session, text: str, field_name: str) -> uuid.UUID:
    """The live asset a person means by `text`: its id, or its exact name when exactly one live
    asset has it. ValidationFailed on `field_name` otherwise, saying what to do."""
    text = (text or "").strip()
    if not text:
        raise ValidationFailed({field_name: "Choose an asset."})
    if UNSTORABLE.search(text):
        raise ValidationFailed({field_name: UNSTORABLE_MESSAGE})
    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    ids = list(session.scalars(
        select(Asset.id).where(Asset.name == text, Asset.deleted_at.is_(None)).limit(2)))
    if not ids:
        raise ValidationFailed({field_name: f"No asset is named “{text}”."})
    if len(ids) > 1:
        raise ValidationFailed({field_name: f"Several assets are named “{text}”: choose one "
                                            "from the suggestions or enter its id."})
    return ids[0]


def _live_asset(session: Session, asset_id: uuid.UUID, field_name: str) -> Asset:
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise ValidationFailed({field_name: "There is no such asset."})
    if asset.deleted_at is not None:
        raise ValidationFailed({field_name: f"“{asset.name}” is in the trash; restore it first."})
    return asset


def _description(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed({"description": "Enter text."})
    value = value.strip()
    if len(value) > DESCRIPTION_MAX:
        raise ValidationFailed({"description": f"At most {DESCRIPTION_MAX} characters."})
    try:  # what the database and the audit hash cannot store (the asset fields' own check)
        value = storable(value)
    except ValueError as exc:
        raise ValidationFailed({"description": str(exc)}) from None
    return value or None


def get(session: Session, relationship_id: uuid.UUID | str) -> AssetRelationship:
    try:
        key = relationship_id if isinstance(relationship_id, uuid.UUID) else uuid.UUID(str(relationship_id))
    except ValueError:
        raise NotFound("There is no such relationship.") from None
    rel = session.get(AssetRelationship, key)
    if rel is None:
        raise NotFound("There is no such relationship.")
    return rel


def create(
    session: Session,
    actor: Actor,
    *,
    source_id: Any,
    target_id: Any,
    kind: Any,
    description: Any = None,
    commit: bool = True,
) -> AssetRelationship:
    """Link two live assets. The same (source, target, kind) twice is a 409; so is a self-link
    a 422. A `depends_on` that closes a cycle is allowed (the assets then show a warning)."""
    errors: dict[str, str] = {}
    checked: dict[str, Any] = {}
    for name, check in (("source_id", lambda: _uuid(source_id, "source_id")),
                        ("target_id", lambda: _uuid(target_id, "target_id")),
                        ("kind", lambda: _kind(kind)),
                        ("description", lambda: _description(description))):
        try:
            checked[name] = check()
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    if checked["source_id"] == checked["target_id"]:
        raise ValidationFailed({"target_id": "An asset cannot be linked to itself."})
    source = _live_asset(session, checked["source_id"], "source_id")
    target = _live_asset(session, checked["target_id"], "target_id")
    if _existing(session, source.id, target.id, checked["kind"]) is not None:
        raise InvalidState(f"“{source.name}” already {PHRASE[checked['kind']]} “{target.name}”.")
    rel = AssetRelationship(source_id=source.id, target_id=target.id, kind=checked["kind"],
                            description=checked["description"], created_by=actor.user_id)
    session.add(rel)
    try:
        session.flush()
    except IntegrityError:  # a concurrent request made the same link first
        session.rollback()
        raise InvalidState(
            f"“{source.name}” already {PHRASE[checked['kind']]} “{target.name}”."
        ) from None
    audit.record_many(session, actor, _events(AuditAction.link, rel, source.name, target.name))
    if commit:
        session.commit()
    return rel


def delete(session: Session, actor: Actor, relationship_id: uuid.UUID | str, *, commit: bool = True) -> None:
    rel = get(session, relationship_id)
    names = _names(session, [rel.source_id, rel.target_id])
    entries = _events(AuditAction.unlink, rel, names[rel.source_id], names[rel.target_id])
    session.delete(rel)
    session.flush()
    audit.record_many(session, actor, entries)
    if commit:
        session.commit()


def _existing(session: Session, source_id: uuid.UUID, target_id: uuid.UUID,
              kind: RelationshipKind) -> AssetRelationship | None:
    return session.scalars(select(AssetRelationship).where(
        AssetRelationship.source_id == source_id, AssetRelationship.target_id == target_id,
        AssetRelationship.kind == kind)).first()


def _names(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    ids = list(set(ids))
    return dict(session.execute(select(Asset.id, Asset.name).where(Asset.id.in_(ids))).tuples().all())


def describe(kind: RelationshipKind, source_name: str, target_name: str) -> str:
    return f"{source_name} {PHRASE[kind]} {target_name}"


def _events(action: AuditAction, rel: AssetRelationship, source_name: str, target_name: str,
            note: str | None = None) -> list[audit.Entry]:
    """One event on each asset: the link as it was (unlink) or is (link)."""
    value = {"id": str(rel.id), "kind": RelationshipKind(rel.kind).value,
             "source_id": str(rel.source_id), "target_id": str(rel.target_id),
             "description": rel.description}
    pair = [None, value] if action == AuditAction.link else [value, None]
    message = describe(RelationshipKind(rel.kind), source_name, target_name)
    if note:
        message = f"{message} ({note})"
    return [audit.Entry(action, ENTITY, asset_id, {"relationship": pair}, message=message)
            for asset_id in (rel.source_id, rel.target_id)]


def move(session: Session, actor: Actor, from_id: uuid.UUID, to_id: uuid.UUID) -> int:
    """A merge: the merged-away asset's relationships move to the survivor, in the caller's
    transaction. A link that would join the survivor to itself, or repeat one it has, goes.
    Returns how many moved."""
    rels = list(session.scalars(select(AssetRelationship).where(
        or_(AssetRelationship.source_id == from_id, AssetRelationship.target_id == from_id))))
    if not rels:
        return 0
    names = _names(session, [from_id, to_id, *(r.source_id for r in rels), *(r.target_id for r in rels)])
    entries: list[audit.Entry] = []
    moved = 0
    note = f"merged into {names.get(to_id, to_id)}"
    for rel in rels:
        old = (rel.source_id, rel.target_id)
        new = tuple(to_id if end == from_id else end for end in old)
        entries += _events(AuditAction.unlink, rel, names[old[0]], names[old[1]], note)
        if new[0] == new[1] or _existing(session, new[0], new[1], RelationshipKind(rel.kind)) is not None:
            session.delete(rel)
            session.flush()
            continue
        rel.source_id, rel.target_id = new
        session.flush()
        entries += [e for e in _events(AuditAction.link, rel, names[new[0]], names[new[1]], note)
                    if e.entity_id != from_id]
        moved += 1
    audit.record_many(session, actor, entries)
    return moved


def purge_links(session: Session, actor: Actor, asset_id: uuid.UUID) -> None:
    """Before an asset is purged: its relationships go with it, each audited as `unlink` on
    both assets (the purged one's history stays in the log)."""
    rels = list(session.scalars(select(AssetRelationship).where(
        or_(AssetRelationship.source_id == asset_id, AssetRelationship.target_id == asset_id))))
    if not rels:
        return
    names = _names(session, [end for r in rels for end in (r.source_id, r.target_id)])
    entries = [e for r in rels
               for e in _events(AuditAction.unlink, r, names[r.source_id], names[r.target_id], "purged")]
    for rel in rels:
        session.delete(rel)
    session.flush()
    audit.record_many(session, actor, entries)


def remove_many(session: Session, actor: Actor, relationship_ids: list[uuid.UUID], *,
                change_set_id: uuid.UUID | None = None, note: str | None = None) -> int:
    """Remove these relationships (those still there), each audited as `unlink` on both assets
    carrying `change_set_id`, in the caller's transaction (an undo). Returns how many went."""
    if not relationship_ids:
        return 0
    rels = list(session.scalars(select(AssetRelationship).where(
        bulk.among(session, AssetRelationship.id, relationship_ids))))
    if not rels:
        return 0
    names = _names(session, [end for r in rels for end in (r.source_id, r.target_id)])
    entries = [e for r in rels
               for e in _events(AuditAction.unlink, r, names[r.source_id], names[r.target_id], note)]
    for rel in rels:
        session.delete(rel)
    session.flush()
    audit.record_many(session, actor, entries, change_set_id=change_set_id)
    return len(rels)


def restore_many(session: Session, actor: Actor, values: list[dict[str, Any]], *,
                 change_set_id: uuid.UUID | None = None, note: str | None = None) -> int:
    """Make again relationships that were removed (`values` as their `unlink` events recorded
    them), each audited as `link` on both assets carrying `change_set_id`, in the caller's
    transaction. One whose asset is gone, or that exists again, is left out. Returns how many
    were made."""
    wanted = []
    for value in values:
        try:
            wanted.append((uuid.UUID(value["id"]), uuid.UUID(value["source_id"]), uuid.UUID(value["target_id"]),
                           RelationshipKind(value["kind"]), value.get("description")))
        except (KeyError, TypeError, ValueError):
            continue
    if not wanted:
        return 0
    names = _names(session, [end for _id, s, t, _kind, _d in wanted for end in (s, t)])
    entries: list[audit.Entry] = []
    made = 0
    for rel_id, source_id, target_id, kind, description in wanted:
        if source_id not in names or target_id not in names or session.get(AssetRelationship, rel_id) \
                or _existing(session, source_id, target_id, kind) is not None:
            continue
        rel = AssetRelationship(id=rel_id, source_id=source_id, target_id=target_id, kind=kind,
                                description=description, created_by=actor.user_id)
        session.add(rel)
        session.flush()
        entries += _events(AuditAction.link, rel, names[source_id], names[target_id], note)
        made += 1
    audit.record_many(session, actor, entries, change_set_id=change_set_id)
    return made


# --- from discovery ---------------------------------------------------------------------------

def link_discovered(session: Session, actor: Actor, run: ImportRun,
                    relations: Iterable[Any]) -> int:
    """Create the relationships an import's file states (`Relation(kind, source_key,
    target_key)`), in the caller's transaction, once its records are written.

    An end is a cloud resource id (found among every asset's identifiers) or a record key of
    this run (found through its record outcomes). A relation whose ends are not both live
    assets, or that already exists, writes nothing: a re-import is idempotent. Returns how many
    relationships were created."""
    wanted = [(RelationshipKind(r.kind), r.source_key, r.target_key) for r in relations]
    if not wanted:
        return 0
    ends = _resolve(session, run, {k for _, s, t in wanted for k in (s, t)})
    triples = {(ends[s], ends[t], kind) for kind, s, t in wanted
               if s in ends and t in ends and ends[s] != ends[t]}
    if not triples:
        return 0
    pairs = sorted({(s, t) for s, t, _ in triples}, key=str)
    existing: set[tuple[uuid.UUID, uuid.UUID, RelationshipKind]] = set()
    for start in range(0, len(pairs), 2000):
        existing |= set(session.execute(
            select(AssetRelationship.source_id, AssetRelationship.target_id, AssetRelationship.kind)
            .where(tuple_(AssetRelationship.source_id, AssetRelationship.target_id).in_(
                pairs[start : start + 2000]))
        ).tuples())
    new = sorted(triples - existing, key=lambda t: (str(t[0]), str(t[1]), t[2].value))
    if not new:
        return 0
    names = _names(session, [end for s, t, _ in new for end in (s, t)])
    entries: list[audit.Entry] = []
    for source_id, target_id, kind in new:
        rel = AssetRelationship(id=uuid.uuid4(), source_id=source_id, target_id=target_id,
                                kind=kind, import_run_id=run.id)
        session.add(rel)
        entries += _events(AuditAction.link, rel, names[source_id], names[target_id])
    session.flush()
    # the run's change set: `Undo this import` removes these links again
    audit.record_many(session, actor, entries, change_set_id=run.change_set_id)
    return len(new)


def _resolve(session: Session, run: ImportRun, keys: set[str]) -> dict[str, uuid.UUID]:
    """Relation ends → live asset ids."""
    found: dict[str, uuid.UUID] = {}
    by_key = {k: k for k in keys}
    cloud = {identifiers.cloud_key(k): k for k in keys}
    for table_key, asset_id in session.execute(
        select(AssetIdentifier.key, AssetIdentifier.asset_id)
        .join(Asset, Asset.id == AssetIdentifier.asset_id)
        .where(bulk.among(session, AssetIdentifier.key, list(cloud)), Asset.deleted_at.is_(None))
    ).tuples():
        found[cloud[table_key]] = asset_id
    record_keys = [k for k in by_key if k not in found]
    if record_keys:
        for record_key, asset_id in session.execute(
            select(ImportRecord.key, ImportRecord.asset_id)
            .join(Asset, Asset.id == ImportRecord.asset_id)
            .where(ImportRecord.run_id == run.id, Asset.deleted_at.is_(None),
                   bulk.among(session, ImportRecord.key, record_keys))
        ).tuples():
            found[record_key] = asset_id
    return found


# --- reading ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Link:
    """A relationship seen from one asset: the other end and which way the arrow points."""

    relationship: AssetRelationship
    other: Asset
    outgoing: bool  # this asset is the source

    @property
    def phrase(self) -> str:
        kind = RelationshipKind(self.relationship.kind)
        return PHRASE[kind] if self.outgoing else f"← {PHRASE[kind]}"


def of_asset(session: Session, asset_id: uuid.UUID) -> list[Link]:
    """Every relationship of an asset with its live other end, by kind, then the other's name.
    Two queries whatever the count."""
    other = aliased(Asset)
    rows = session.execute(
        select(AssetRelationship, other)
        .join(other, or_(
            and_(AssetRelationship.source_id == asset_id, other.id == AssetRelationship.target_id),
            and_(AssetRelationship.target_id == asset_id, other.id == AssetRelationship.source_id),
        ))
        .where(or_(AssetRelationship.source_id == asset_id, AssetRelationship.target_id == asset_id),
               other.deleted_at.is_(None))
        .options(noload(other.tags))  # not shown with a link
    ).tuples().all()
    links = [Link(rel, asset, rel.source_id == asset_id) for rel, asset in rows]
    links.sort(key=lambda link: (not link.outgoing, link.relationship.kind, link.other.name.lower()))
    return links


def listing(
    session: Session,
    *,
    kind: RelationshipKind | None = None,
    asset_id: uuid.UUID | None = None,
    source_id: uuid.UUID | None = None,
    target_id: uuid.UUID | None = None,
    q: str | None = None,
    origin: Literal["manual", "discovered"] | None = None,
    limit: int = 50,
    after: str | None = None,
) -> Page[tuple[AssetRelationship, Asset, Asset]]:
    """Relationships between live assets, newest first, keyset-paged on (created_at, id).
    `q` looks in either end's name; `asset_id` matches either end."""
    source, target = aliased(Asset), aliased(Asset)
    stmt = (
        select(AssetRelationship, source, target)
        .join(source, source.id == AssetRelationship.source_id)
        .join(target, target.id == AssetRelationship.target_id)
        .where(source.deleted_at.is_(None), target.deleted_at.is_(None))
        .options(noload(source.tags), noload(target.tags))  # not shown with a link
    )
    if kind is not None:
        stmt = stmt.where(AssetRelationship.kind == kind)
    if asset_id is not None:
        stmt = stmt.where(or_(AssetRelationship.source_id == asset_id,
                              AssetRelationship.target_id == asset_id))
    if source_id is not None:
        stmt = stmt.where(AssetRelationship.source_id == source_id)
    if target_id is not None:
        stmt = stmt.where(AssetRelationship.target_id == target_id)
    if q and q.strip():
        term = q.strip()
        stmt = stmt.where(or_(source.name.icontains(term, autoescape=True),
                              target.name.icontains(term, autoescape=True)))
    if origin == "manual":
        stmt = stmt.where(AssetRelationship.import_run_id.is_(None))
    elif origin == "discovered":
        stmt = stmt.where(AssetRelationship.import_run_id.is_not(None))
    position = decode_cursor(after, MOMENT, ID) if after else None
    stmt = keyset(stmt, (AssetRelationship.created_at, AssetRelationship.id), descending=True,
                  limit=limit, position=position)
    rows = list(session.execute(stmt).tuples().all())
    return keyset_page(rows, limit=limit, key=lambda row: (row[0].created_at, row[0].id))
