"""The dependency graph that relationships between assets form, read (SPEC §3, §5, §7).

`graph`, `impact` and `cycle_members` walk the graph with one recursive CTE each way (`_walk`);
`graph_json` is `graph_dict(graph(...))` built by PostgreSQL in one statement. Relationships are
written in `webapp.services.relationships` (which re-exports the public names of this module
that its callers use).

Directions follow dependency, not arrows (see `webapp.models.relationship`): **down** is what
depends on an asset (what breaks when it goes down), **up** is what it depends on.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    String,
    Uuid,
    literal,
    select,
    text,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session, noload

from webapp.models import Asset, AssetRelationship, Criticality, RelationshipKind
from webapp.services import bulk
from webapp.services.errors import NotFound, ValidationFailed

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
