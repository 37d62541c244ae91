"""Relationships between assets, and the dependency graph they form (SPEC §3, §5, §7).

Writing: `create`, `delete`, `move` (a merge) and `link_discovered` (an import). Each writes a
`link`/`unlink` audit event on *both* assets in the caller's transaction, so the change shows in
both histories. Relationships are not asset fields: they do not bump an asset's version.

Reading: `listing` and `of_asset` for the pages and the API; `graph`, `impact` and
`cycle_members` walk the graph with one recursive CTE each way (`_walk`).

Directions follow dependency, not arrows (see `webapp.models.relationship`): **down** is what
depends on an asset (what breaks when it goes down), **up** is what it depends on.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    String,
    Uuid,
    and_,
    literal,
    or_,
    select,
    text,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, noload

from webapp.models import (
    Asset,
    AssetIdentifier,
    AssetRelationship,
    AuditAction,
    Criticality,
    ImportRecord,
    ImportRun,
    RelationshipKind,
)
from webapp.services import audit, bulk, identifiers
from webapp.services.actor import Actor
from webapp.services.errors import InvalidState, NotFound, ValidationFailed
from webapp.services.text import storable

# the lists page by the asset list's keyset cursor (asset_search), under this key
CURSOR_KEY = "created_at"
ENTITY = "asset"  # link/unlink events live in the histories of the assets they join
DESCRIPTION_MAX = 500

PHRASE = {
    RelationshipKind.depends_on: "depends on",
    RelationshipKind.replicates_to: "replicates to",
    RelationshipKind.backs_up_to: "backs up to",
    RelationshipKind.feeds: "feeds",
    RelationshipKind.member_of: "is a member of",
}

# Graph bounds. A walk never goes deeper than MAX_DEPTH levels nor returns more than `limit`
# nodes (at most NODE_LIMIT); past either bound the answer says `truncated`.
DEFAULT_DEPTH = 2
MAX_DEPTH = 10
NODE_LIMIT = 500
CYCLE_DEPTH = 50  # how far a depends_on cycle is looked for

CRITICALITY_RANK = {Criticality.critical: 0, Criticality.high: 1, Criticality.medium: 2,
                    Criticality.low: 3, None: 4}

Direction = Literal["up", "down", "both"]
DIRECTIONS: tuple[Direction, ...] = ("up", "down", "both")


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
    audit.record_many(session, actor, entries)
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


@dataclass
class Page:
    items: list[tuple[AssetRelationship, Asset, Asset]]
    next_cursor: tuple[datetime, uuid.UUID] | None


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
    after: tuple[datetime, uuid.UUID] | None = None,
) -> Page:
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
    if after is not None:
        stmt = stmt.where(tuple_(AssetRelationship.created_at, AssetRelationship.id) < tuple_(*after))
    rows = session.execute(
        stmt.order_by(AssetRelationship.created_at.desc(), AssetRelationship.id.desc()).limit(limit + 1)
    ).tuples().all()
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = (rows[-1][0].created_at, rows[-1][0].id) if more and rows else None
    return Page(list(rows), cursor)


# --- the graph --------------------------------------------------------------------------------

# What a graph shows of an asset and of a link, read as plain rows (enums as their stored
# strings): a graph of 500 assets is built in a few milliseconds, where ORM objects cost tens.
NODE_COLUMNS = (
    Asset.id, Asset.name, type_coerce(Asset.engine, String).label("engine"),
    type_coerce(Asset.environment, String).label("environment"),
    type_coerce(Asset.status, String).label("status"),
    type_coerce(Asset.criticality, String).label("criticality"), Asset.host,
)
EDGE_COLUMNS = (AssetRelationship.id, AssetRelationship.source_id, AssetRelationship.target_id,
                type_coerce(AssetRelationship.kind, String).label("kind"),
                AssetRelationship.description)


@dataclass
class Node:
    asset: Any  # a row of NODE_COLUMNS
    depth: int
    side: str  # "self", "up", "down" or "both" (reached both ways: a cycle)


@dataclass
class Graph:
    root: uuid.UUID
    direction: Direction
    depth: int
    nodes: list[Node]
    edges: list[Any]  # rows of EDGE_COLUMNS
    truncated: bool
    cycle: list[uuid.UUID] = field(default_factory=list)


Way = Literal["up", "down"]


def _walk(
    session: Session,
    start: uuid.UUID,
    direction: Way,
    depth: int,
    limit: int,
    kinds: Sequence[RelationshipKind] | None = None,
) -> tuple[dict[uuid.UUID, int], bool]:
    """Assets reachable from `start` within `depth` steps one way; see `_walks`."""
    return _walks(session, start, (direction,), depth, limit, kinds)[direction]


def _walks(
    session: Session,
    start: uuid.UUID,
    ways: Sequence[Way],
    depth: int,
    limit: int,
    kinds: Sequence[RelationshipKind] | None = None,
) -> dict[Way, tuple[dict[uuid.UUID, int], bool]]:
    """For each way: the assets reachable from `start` within `depth` steps, each with its
    least depth, nearest first (`start` itself only when a cycle leads back to it), and whether
    more than `limit` were within reach (then the nearest `limit` are kept).

    One recursive CTE per way, all in one statement. `UNION` (not `UNION ALL`) drops a (node,
    depth) pair already produced, so a cycle cannot make a walk run away: each asset appears at
    most once per level. A walk is breadth first and the `LIMIT` on it stops it early
    (PostgreSQL evaluates a recursive CTE only as far as its reader fetches). Soft-deleted
    assets are neither returned nor walked through.
    """
    # Each asset gives at most depth + 1 rows, so (limit + 1) × (depth + 1) rows surely hold
    # more than `limit` assets. Most walks need far fewer rows: a first pass reads a short run,
    # and only a way whose run came back full yet holds `limit` assets or fewer is read again
    # in full.
    rows_cap = (limit + 1) * (depth + 1) + 1
    first = min(rows_cap, 2 * limit + 2)
    found = _read_walks(session, start, {way: first for way in ways}, depth, kinds)
    again = {way: rows_cap for way, (seen, fetched) in found.items()
             if fetched == first and len(seen) <= limit and first < rows_cap}
    if again:
        found.update(_read_walks(session, start, again, depth, kinds))
    result: dict[Way, tuple[dict[uuid.UUID, int], bool]] = {}
    for way, (seen, _fetched) in found.items():
        truncated = len(seen) > limit
        if truncated:
            seen = dict(sorted(seen.items(), key=lambda item: item[1])[:limit])
        result[way] = (seen, truncated)
    return result


def _read_walks(
    session: Session,
    start: uuid.UUID,
    rows: dict[Way, int],
    depth: int,
    kinds: Sequence[RelationshipKind] | None,
) -> dict[Way, tuple[dict[uuid.UUID, int], int]]:
    """Run the walks (at most `rows[way]` rows each) in one statement: for each way, {asset:
    least depth} in the order met, without the start, and how many rows were read."""
    parts = []
    for way, cap in rows.items():
        walk = _walk_cte(start, way, depth, kinds)
        parts.append(select(literal(way).label("way"), walk.c.node, walk.c.depth)
                     .limit(cap).subquery(f"{way}_rows").select())
    stmt = parts[0] if len(parts) == 1 else union_all(*parts)
    found: dict[Way, tuple[dict[uuid.UUID, int], int]] = {way: ({}, 0) for way in rows}
    for way, node, level in session.execute(stmt).tuples():
        seen, fetched = found[way]
        if level and node not in seen:
            seen[node] = level
        found[way] = (seen, fetched + 1)
    return found


def _walk_cte(start: uuid.UUID, way: Way, depth: int,
              kinds: Sequence[RelationshipKind] | None) -> Any:
    rel = AssetRelationship.__table__
    asset = Asset.__table__
    here, there = ((rel.c.provider_id, rel.c.dependent_id) if way == "down"
                   else (rel.c.dependent_id, rel.c.provider_id))
    walk = select(literal(start, Uuid()).label("node"), literal(0).label("depth")).cte(
        f"walk_{way}", recursive=True)
    conditions: list[ColumnElement[bool]] = [walk.c.depth < depth]
    if kinds:
        conditions.append(rel.c.kind.in_([k.value for k in kinds]))
    trashed = (select(asset.c.id)
               .where(asset.c.id == there, asset.c.deleted_at.is_not(None))
               .exists())
    step = (
        select(there, walk.c.depth + 1)
        .select_from(walk.join(rel, here == walk.c.node))
        .where(*conditions, ~trashed)
    )
    return walk.union(step)


def clamp_depth(depth: int | None) -> tuple[int, bool]:
    """The depth walked for a requested one, and whether it was capped."""
    if depth is None:
        return DEFAULT_DEPTH, False
    if depth < 1:
        raise ValidationFailed({"depth": "Enter a depth of 1 or more."})
    return (MAX_DEPTH, True) if depth > MAX_DEPTH else (depth, False)


def graph(
    session: Session,
    asset_id: uuid.UUID,
    *,
    direction: Direction = "both",
    depth: int | None = None,
    limit: int = NODE_LIMIT,
) -> Graph:
    """The neighbourhood of an asset: nodes (the asset first, then by depth) and every
    relationship among them. Three or four queries whatever the size."""
    _check_graph(direction, limit)
    walked, capped = clamp_depth(depth)
    ways: tuple[Way, ...] = ("up", "down") if direction == "both" else (direction,)
    sides: dict[uuid.UUID, tuple[int, str]] = {}
    truncated = False
    # one level further when the depth was capped: is there more past the cap?
    for way, (reach, cut) in _walks(session, asset_id, ways, walked + int(capped), limit).items():
        truncated |= cut
        for node, level in reach.items():
            if level > walked:
                truncated = True
                continue
            if node == asset_id:
                continue
            if node in sides:
                sides[node] = (min(level, sides[node][0]), "both")
            else:
                sides[node] = (level, way)
    if len(sides) > limit:
        truncated = True
        sides = dict(sorted(sides.items(), key=lambda item: item[1][0])[:limit])
    ids = [asset_id, *sides]
    # plain rows, not ORM objects: a graph of 500 assets is read in milliseconds
    assets = {row.id: row for row in session.execute(
        select(*NODE_COLUMNS).where(bulk.among(session, Asset.id, ids)))}
    if asset_id not in assets:
        raise NotFound("There is no such asset.")
    nodes = [Node(assets[asset_id], 0, "self")]
    nodes += [Node(assets[i], level, side) for i, (level, side) in
              sorted(sides.items(), key=lambda item: (item[1][0], assets[item[0]].name.lower()))
              if i in assets]
    edges = list(session.execute(
        select(*EDGE_COLUMNS)
        .where(bulk.among(session, AssetRelationship.source_id, ids),
               bulk.among(session, AssetRelationship.target_id, ids))
        .order_by(AssetRelationship.created_at, AssetRelationship.id)
    ))
    return Graph(asset_id, direction, walked, nodes, edges, truncated)


@dataclass
class Impact:
    assets: list[tuple[Asset, int]]  # (asset, depth), most critical first
    truncated: bool


def impact(session: Session, asset_id: uuid.UUID, *, limit: int = NODE_LIMIT) -> Impact:
    """What depends on an asset, directly or not (up to MAX_DEPTH levels): "if this goes down,
    these break", most critical first, then nearest, then by name."""
    reach, truncated = _walk(session, asset_id, "down", MAX_DEPTH, limit)
    reach.pop(asset_id, None)
    if not reach:
        return Impact([], truncated)
    assets = session.scalars(select(Asset).where(bulk.among(session, Asset.id, list(reach)))
                             .options(noload(Asset.tags))).all()
    ordered = sorted(((a, reach[a.id]) for a in assets),
                     key=lambda pair: (CRITICALITY_RANK[pair[0].criticality], pair[1], pair[0].name.lower()))
    return Impact(ordered, truncated)


def cycle_members(session: Session, asset_id: uuid.UUID) -> list[Asset]:
    """The other assets on a `depends_on` cycle through this asset (empty: none). These are
    the assets it depends on, directly or not, that also depend on it."""
    kinds = [RelationshipKind.depends_on]
    walks = _walks(session, asset_id, ("up", "down"), CYCLE_DEPTH, NODE_LIMIT, kinds)
    ahead, behind = walks["up"][0], walks["down"][0]
    if asset_id not in ahead:
        return []
    members = (set(ahead) & set(behind)) - {asset_id}
    if not members:
        return []
    assets = session.scalars(select(Asset).where(bulk.among(session, Asset.id, list(members)))
                             .options(noload(Asset.tags))).all()
    return sorted(assets, key=lambda a: a.name.lower())


def closes_cycle(session: Session, rel: AssetRelationship) -> bool:
    """Whether a `depends_on` link is part of a cycle (its target depends back on its source)."""
    if RelationshipKind(rel.kind) != RelationshipKind.depends_on:
        return False
    ahead, _ = _walk(session, rel.target_id, "up", CYCLE_DEPTH, NODE_LIMIT, [RelationshipKind.depends_on])
    return rel.source_id in ahead


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


# --- plain data (the API and the asset page's graph read the same shape) ----------------------

def node_dict(node: Node) -> dict[str, Any]:
    a = node.asset
    return {"id": str(a.id), "name": a.name, "engine": a.engine, "environment": a.environment,
            "status": a.status, "criticality": a.criticality, "host": a.host,
            "depth": node.depth, "side": node.side}


def edge_dict(edge: Any) -> dict[str, Any]:
    """A graph's link (a row of EDGE_COLUMNS): which way it points, its kind, its description
    (the rest of a relationship is at /api/v1/relationships/{id})."""
    return {"id": str(edge.id), "source_id": str(edge.source_id), "target_id": str(edge.target_id),
            "kind": edge.kind, "description": edge.description}


def relationship_dict(rel: AssetRelationship) -> dict[str, Any]:
    return {
        "id": str(rel.id), "source_id": str(rel.source_id), "target_id": str(rel.target_id),
        "kind": RelationshipKind(rel.kind).value, "description": rel.description,
        "created_at": rel.created_at.isoformat(),
        "created_by": str(rel.created_by) if rel.created_by else None,
        "import_run_id": str(rel.import_run_id) if rel.import_run_id else None,
    }


def graph_dict(g: Graph) -> dict[str, Any]:
    """`{"nodes", "edges", ...}` (SPEC §7): nodes with their depth and side, edges as links."""
    return {
        "root": str(g.root), "direction": g.direction, "depth": g.depth,
        "truncated": g.truncated,
        "nodes": [node_dict(n) for n in g.nodes],
        "edges": [edge_dict(e) for e in g.edges],
    }


# --- the graph as JSON, built by PostgreSQL ---------------------------------------------------

def graph_json(
    session: Session,
    asset_id: uuid.UUID,
    *,
    direction: Direction = "both",
    depth: int | None = None,
    limit: int = NODE_LIMIT,
) -> str:
    """`graph_dict(graph(...))` as JSON text. On PostgreSQL one statement walks, picks the
    nodes and builds the JSON (`_GRAPH_SQL`), so a graph of 500 assets costs no Python per
    asset; elsewhere it is `graph()` serialised. Both give the same answer (tested)."""
    if not bulk.is_postgresql(session):
        return json.dumps(graph_dict(graph(session, asset_id, direction=direction, depth=depth,
                                           limit=limit)))
    _check_graph(direction, limit)
    walked, capped = clamp_depth(depth)
    walk_depth = walked + int(capped)  # one level further: is there more past the cap?
    rows_cap = (limit + 1) * (walk_depth + 1) + 1
    params = {"start": asset_id, "depth": walk_depth, "walked": walked, "limit": limit,
              "up": direction in ("up", "both"), "down": direction in ("down", "both"),
              "rows": min(rows_cap, 2 * limit + 2)}
    row = session.execute(_GRAPH_SQL, params).one()
    if row.rerun and params["rows"] < rows_cap:  # a full first run may hide more: read it all
        row = session.execute(_GRAPH_SQL, {**params, "rows": rows_cap}).one()
    if row.nodes is None:
        raise NotFound("There is no such asset.")
    return (f'{{"root":"{asset_id}","direction":"{direction}","depth":{walked},'
            f'"truncated":{"true" if row.truncated else "false"},'
            f'"nodes":{row.nodes},"edges":{row.edges}}}')


def _check_graph(direction: str, limit: int) -> None:
    if direction not in DIRECTIONS:
        raise ValidationFailed({"direction": "Choose up, down or both."})
    if not 1 <= limit <= NODE_LIMIT:
        raise ValidationFailed({"limit": f"Enter a number from 1 to {NODE_LIMIT}."})


# The same walk as `_walks` (see its docstring), the same choice of nodes as `graph()`:
# per way the least depth of each asset and the nearest `limit` assets; past the walked depth
# or the limit the answer is `truncated`; an asset reached both ways is on side `both`; then
# the nearest `limit` of all. `rerun`: a way read `rows` rows holding `limit` assets or fewer,
# so more may lie beyond them.
_WALK = """
walk_{way}(node, depth) AS (
    SELECT CAST(:start AS uuid), 0
  UNION
    SELECT r.{there}, w.depth + 1
    FROM walk_{way} w JOIN asset_relationships r ON r.{here} = w.node
    WHERE w.depth < :depth
      AND NOT EXISTS (SELECT 1 FROM assets t WHERE t.id = r.{there} AND t.deleted_at IS NOT NULL)
)"""
_GRAPH_SQL = text(
    "WITH RECURSIVE"
    + _WALK.format(way="up", here="dependent_id", there="provider_id") + ","
    + _WALK.format(way="down", here="provider_id", there="dependent_id") + ","
    + """
walked(way, node, depth) AS (
    (SELECT 'up', node, depth FROM walk_up WHERE :up LIMIT :rows)
  UNION ALL
    (SELECT 'down', node, depth FROM walk_down WHERE :down LIMIT :rows)
),
least AS (SELECT way, node, min(depth) AS depth FROM walked WHERE depth > 0 GROUP BY way, node),
per_way AS (
    SELECT w.way, w.fetched, coalesce(l.reached, 0) AS reached
    FROM (SELECT way, count(*) AS fetched FROM walked GROUP BY way) w
    LEFT JOIN (SELECT way, count(*) AS reached FROM least GROUP BY way) l ON l.way = w.way
),
kept AS (
    SELECT way, node, depth FROM (
        SELECT way, node, depth, row_number() OVER (PARTITION BY way ORDER BY depth) AS n
        FROM least
    ) ranked
    WHERE n <= :limit AND depth <= :walked AND node <> CAST(:start AS uuid)
),
sided AS (
    SELECT node, min(depth) AS depth,
           CASE WHEN count(*) > 1 THEN 'both' ELSE min(way) END AS side
    FROM kept GROUP BY node
),
picked AS (
    SELECT CAST(:start AS uuid) AS node, 0 AS depth, 'self' AS side
  UNION ALL
    (SELECT node, depth, side FROM sided ORDER BY depth LIMIT :limit)
)
SELECT
    coalesce((SELECT bool_or(fetched >= :rows AND reached <= :limit) FROM per_way), false)
        AS rerun,
    coalesce((SELECT bool_or(reached > :limit) FROM per_way), false)
        OR EXISTS (SELECT 1 FROM least WHERE depth > :walked)
        OR (SELECT count(*) FROM sided) > :limit
        AS truncated,
    (SELECT json_agg(json_build_object(
                'id', a.id, 'name', a.name, 'engine', a.engine, 'environment', a.environment,
                'status', a.status, 'criticality', a.criticality, 'host', a.host,
                'depth', p.depth, 'side', p.side)
            ORDER BY p.depth, lower(a.name) COLLATE "C", a.id)::text
     FROM picked p JOIN assets a ON a.id = p.node) AS nodes,
    (SELECT coalesce(json_agg(json_build_object(
                'id', r.id, 'source_id', r.source_id, 'target_id', r.target_id,
                'kind', r.kind, 'description', r.description)
            ORDER BY r.created_at, r.id), '[]')::text
     FROM asset_relationships r
     WHERE r.source_id = ANY(ARRAY(SELECT node FROM picked))
       AND r.target_id = ANY(ARRAY(SELECT node FROM picked))) AS edges
""")
