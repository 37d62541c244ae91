"""Graph workload of `make bench` (SPEC §11: "graph, depth 5, 1,000,000 relationships: p95 ≤ 20 ms
on PostgreSQL; unbounded depth capped and flagged `truncated`").

The relationships go into the 1,000,000-asset database of the matching workload
(BENCH_GRAPH_DATABASE_URL, default `inventory_bench_1m`): its assets are built once and reused
by both workloads, so the graph only adds its own table. They are loaded with COPY once and
reused while the table holds the wanted number of rows. The topology is what a database
estate looks like, deterministically (seeded):

* tiers of assets: a few foundation services, then platforms, shared databases, application
  databases and many leaf databases; `depends_on` links go from a tier to lower ones, with a
  skewed choice of provider (a few assets end up with hundreds of dependents, most with none);
* hubs: a handful of assets with thousands of dependents (an identity database everyone
  `depends_on`, backup vaults everyone `backs_up_to`) or of providers (a data lake many `feed`);
* clusters (`member_of`), primaries with replicas (`replicates_to`), warehouses fed by
  application databases (`feeds`) and long ETL pipelines (chains of `feeds`, deeper than the
  depth cap);
* `depends_on` cycles of two to four assets.

Requests go through the real code path: `GET /api/v1/assets/{id}/graph` with a bearer token and
the Flask test client (server time, as the page workloads measure it), or, when the API has no
such endpoint, `relationships.graph()` + `graph_dict()` + JSON in an app context (said so in the
output). Every answer is checked against an independent breadth-first walk (node count, edge
count, `truncated`). Measured:

* `both`, depth 5, from random live assets (the SPEC's figure);
* `down`, depth 5, from the hubs (the node cap: `truncated` expected);
* depth 1000 ("unbounded") from the heads of ETL pipelines and from random assets (the depth
  is capped to MAX_DEPTH and `truncated` is expected where more lies beyond);
* `relationships.impact()` (what depends on an asset, 10 levels) from the random assets;
* the plans of the walk (EXPLAIN ANALYZE): no sequential scan or hash join over the table.
"""

from __future__ import annotations

import json
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import event

from bench import data, matching

DEFAULT_URL = matching.DEFAULT_URL  # the assets are shared with the matching workload
TARGET_P95_MS = 20.0
SEED = 20261124
CASE_TIME_BUDGET_S = 90.0
KINDS = ("depends_on", "replicates_to", "backs_up_to", "feeds", "member_of")
PIPELINE = "etl pipeline"  # descriptions of pipeline links start with this


# --- building -----------------------------------------------------------------------------------


@dataclass
class Built:
    relationships: int
    seconds: float | None  # None: reused
    phases: dict[str, float] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)


def relationship_count(url: str) -> int:
    with psycopg.connect(data.conninfo(url)) as conn:
        return conn.execute("SELECT count(*) FROM asset_relationships").fetchone()[0]


class Topology:
    """Edges (source position, target position, kind, description) over n asset positions."""

    def __init__(self, n: int, total: int, rng: random.Random) -> None:
        self.n, self.total, self.rng = n, total, rng
        self.seen: set[int] = set()
        cuts = [int(n * f) for f in (0.0, 0.02, 0.07, 0.20, 0.45, 1.0)]
        self.tiers = [(cuts[i], cuts[i + 1]) for i in range(5)]  # foundation .. leaves

    def pick(self, tier: int, skew: float = 1.0) -> int:
        """A position in a tier; skew > 1 favours its first positions (a power law)."""
        lo, hi = self.tiers[tier]
        return lo + int((hi - lo) * self.rng.random() ** skew)

    def pick_in(self, lo_tier: int, hi_tier: int) -> int:
        lo, hi = self.tiers[lo_tier][0], self.tiers[hi_tier][1]
        return self.rng.randrange(lo, hi)

    def edge(self, s: int, t: int, kind: int, description: str | None = None) -> Iterator[tuple]:
        if s == t or len(self.seen) >= self.total:
            return
        key = (s * self.n + t) * len(KINDS) + kind
        if key in self.seen:
            return
        self.seen.add(key)
        yield s, t, kind, description

    def edges(self) -> Iterator[tuple[int, int, int, str | None]]:
        rng, n, total = self.rng, self.n, self.total
        budget = lambda share: int(total * share)  # noqa: E731
        dep, rep, bak, fee, mem = range(5)
        # hubs: the first positions of the foundation tier
        hubs = max(4, min(20, n // 50_000))
        shares = [1.0 / (i + 1) ** 0.5 for i in range(hubs)]
        hub_edges = budget(0.08)
        for h in range(hubs):
            size = max(700, int(hub_edges * shares[h] / sum(shares)))
            kind = (dep, bak, dep, fee)[h % 4]
            label = ("shared identity store", "backup vault", "shared config", "data lake")[h % 4]
            for _ in range(size):
                other = self.pick_in(1, 4)
                if kind == fee:  # the lake is fed by many: it depends on them
                    yield from self.edge(other, h, kind, f"{label} ingest")
                else:
                    yield from self.edge(other, h, kind)
        # clusters: instances (tiers 3-4) member_of a cluster asset (tier 2)
        cluster = self.tiers[2][0]
        made = 0
        while made < budget(0.08):
            for _ in range(rng.randint(2, 6)):
                made += 1
                yield from self.edge(self.pick_in(3, 4), cluster, mem)
            cluster = cluster + 1 if cluster + 1 < self.tiers[2][1] else self.tiers[2][0]
        # replication: primaries (tiers 1-3) to replicas (tiers 3-4), sometimes cascaded
        made = 0
        while made < budget(0.08):
            primary = self.pick_in(1, 3)
            for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
                replica = self.pick_in(3, 4)
                made += 1
                yield from self.edge(primary, replica, rep)
                if rng.random() < 0.1:
                    made += 1
                    yield from self.edge(replica, self.pick_in(4, 4), rep, "cascaded replica")
        # warehouses (tier 1, skewed) fed by application databases (tiers 2-4)
        for _ in range(budget(0.06)):
            yield from self.edge(self.pick_in(2, 4), self.pick(1, 2.0), fee)
        # backups of ordinary assets into a few dozen vaults (foundation tier, after the hubs)
        lo = self.tiers[0][0] + hubs
        for _ in range(budget(0.02)):
            yield from self.edge(self.pick_in(3, 4), lo + rng.randrange(40), bak)
        # long ETL pipelines: chains of feeds deeper than the depth cap
        for p in range(max(5, n // 5_000)):
            length = rng.randint(8, 25)
            stages = [self.pick_in(2, 3) for _ in range(length + 1)]
            for i in range(length):
                yield from self.edge(
                    stages[i], stages[i + 1], fee, f"{PIPELINE} {p} stage {i + 1} of {length}"
                )
        # depends_on cycles of 2-4 assets
        for _ in range(max(5, n // 2_000)):
            ring = [self.pick_in(2, 4) for _ in range(rng.randint(2, 4))]
            for a, b in zip(ring, ring[1:] + ring[:1], strict=True):
                yield from self.edge(a, b, dep, "circular dependency")
        # the rest: each asset depends on a few others in lower tiers, skewed towards some
        while len(self.seen) < total:
            source_tier = rng.choices((1, 2, 3, 4), weights=(5, 13, 25, 55))[0]
            source = self.pick(source_tier)
            provider_tier = source_tier - 1 if rng.random() < 0.6 else rng.randrange(source_tier)
            yield from self.edge(source, self.pick(provider_tier, 2.2), dep)


def build(url: str, total: int) -> Built:
    """COPY `total` relationships over the database's assets (all in one transaction), VACUUM
    ANALYZE. Skipped when the table already holds that many rows."""
    existing = relationship_count(url)
    if existing == total:
        return Built(existing, None)
    phases: dict[str, float] = {}
    by_kind = dict.fromkeys(KINDS, 0)
    t0 = started = time.perf_counter()
    rng = random.Random(SEED)
    now = datetime.now(UTC).replace(microsecond=0)
    two_years = 2 * 365 * 86400
    with psycopg.connect(data.conninfo(url)) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM assets ORDER BY id")]
        if len(ids) < 1_000:
            raise SystemExit(f"graph bench: only {len(ids)} assets in {url}")
        rng.shuffle(ids)  # positions -> assets: tiers and hubs are random assets
        phases["read assets"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute("TRUNCATE asset_relationships")
        indexes = data.drop_secondary_indexes(conn, ["asset_relationships"])
        # every end is an existing asset by construction: the foreign-key triggers (two lookups
        # per row) are skipped for the load, when allowed, and the ends checked once after it
        superuser = conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()[0]
        if superuser:
            conn.execute("SET LOCAL session_replication_role = replica")
        cur = conn.cursor()
        topology = Topology(len(ids), total, rng)
        with cur.copy(
            "COPY asset_relationships (id, source_id, target_id, kind, description, created_at)"
            " FROM STDIN"
        ) as copy:
            for s, t, kind, description in topology.edges():
                by_kind[KINDS[kind]] += 1
                created = now - timedelta(seconds=rng.randrange(two_years))
                copy.write_row(
                    (
                        uuid.UUID(bytes=rng.randbytes(16), version=4),
                        ids[s],
                        ids[t],
                        KINDS[kind],
                        description,
                        created,
                    )
                )
        del topology
        phases["generate+copy"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if superuser:
            conn.execute("SET LOCAL session_replication_role = origin")
            dangling = conn.execute(
                "SELECT count(*) FROM asset_relationships r WHERE NOT EXISTS "
                "(SELECT 1 FROM assets a WHERE a.id = r.source_id) OR NOT EXISTS "
                "(SELECT 1 FROM assets a WHERE a.id = r.target_id)"
            ).fetchone()[0]
            if dangling:
                raise SystemExit(f"graph bench: {dangling} relationships name no asset")
            phases["check ends"] = time.perf_counter() - t0
            t0 = time.perf_counter()
        data.rebuild_indexes(conn, indexes)
        conn.commit()
        phases["indexes"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with psycopg.connect(data.conninfo(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) asset_relationships")  # index-only scans need the VM
    phases["vacuum"] = time.perf_counter() - t0
    return Built(sum(by_kind.values()), time.perf_counter() - started, phases, by_kind)


# --- picking the start assets -------------------------------------------------------------------


def random_assets(url: str, n: int, seed: int) -> list[uuid.UUID]:
    """n live assets, a seeded uniform sample."""
    with psycopg.connect(data.conninfo(url)) as conn:
        rows = conn.execute(
            "SELECT id FROM assets WHERE deleted_at IS NULL ORDER BY md5(id::text || %s) LIMIT %s",
            (str(seed), n),
        ).fetchall()
    return [r[0] for r in rows]


def hub_assets(url: str, n: int, more_than: int) -> list[tuple[uuid.UUID, int]]:
    """Up to n live assets with the most direct dependents, more than `more_than` each, with
    that count."""
    with psycopg.connect(data.conninfo(url)) as conn:
        return conn.execute(
            "SELECT r.provider_id, count(*) FROM asset_relationships r "
            "JOIN assets a ON a.id = r.provider_id AND a.deleted_at IS NULL "
            "GROUP BY r.provider_id HAVING count(*) > %s "
            "ORDER BY count(*) DESC, r.provider_id LIMIT %s",
            (more_than, n),
        ).fetchall()


def pipeline_heads(url: str, n: int, longer_than: int) -> list[uuid.UUID]:
    """The first assets of n ETL pipelines (chains of feeds) of more than `longer_than` links,
    every stage of them live (a soft-deleted stage cuts a chain short)."""
    with psycopg.connect(data.conninfo(url)) as conn:
        rows = conn.execute(
            """
            SELECT (array_agg(r.source_id) FILTER (WHERE split_part(r.description, ' ', 5) = '1'))[1]
            FROM asset_relationships r
            JOIN assets s ON s.id = r.source_id JOIN assets t ON t.id = r.target_id
            WHERE r.description LIKE %s
            GROUP BY split_part(r.description, ' ', 3)
            HAVING bool_and(s.deleted_at IS NULL AND t.deleted_at IS NULL)
               AND count(*) = max(split_part(r.description, ' ', 7)::int)
               AND count(*) > %s
            ORDER BY split_part(r.description, ' ', 3)::int LIMIT %s
            """,
            (f"{PIPELINE} % stage % of %", longer_than, n),
        ).fetchall()
    return [r[0] for r in rows]


# --- the independent check ----------------------------------------------------------------------


class Oracle:
    """A plain breadth-first walk, one query per level, to check each answer against."""

    def __init__(self, url: str, max_depth: int, node_limit: int) -> None:
        self.conn = psycopg.connect(data.conninfo(url), autocommit=True)
        self.max_depth, self.node_limit = max_depth, node_limit

    def close(self) -> None:
        self.conn.close()

    def _side(self, root: uuid.UUID, way: str, depth: int) -> tuple[set[uuid.UUID], bool]:
        """Live assets within `depth` steps (root excluded), and whether more lie beyond: over
        the node limit within reach, or a new asset one level further."""
        here, there = (
            ("provider_id", "dependent_id") if way == "down" else ("dependent_id", "provider_id")
        )
        query = (
            f"SELECT DISTINCT r.{there} FROM asset_relationships r JOIN assets a "
            f"ON a.id = r.{there} AND a.deleted_at IS NULL WHERE r.{here} = ANY(%s)"
        )
        seen: set[uuid.UUID] = set()
        frontier = [root]
        for level in range(1, depth + 2):
            if not frontier:
                return seen, False
            found = {r[0] for r in self.conn.execute(query, (frontier,))} - seen - {root}
            if level > depth:
                return seen, bool(found)
            seen |= found
            if len(seen) > self.node_limit:
                return seen, True
            frontier = list(found)
        return seen, False

    def expect(self, root: uuid.UUID, direction: str, depth: int) -> tuple[int, bool, int]:
        """(nodes including the root, truncated, edges among the nodes) of a correct answer."""
        capped = depth > self.max_depth
        depth = min(depth, self.max_depth)
        nodes: set[uuid.UUID] = set()
        truncated = False
        for way in ("up", "down"):
            if direction in (way, "both"):
                side, beyond = self._side(root, way, depth)
                nodes |= side
                truncated |= len(side) > self.node_limit or (capped and beyond)
        truncated |= len(nodes) > self.node_limit
        if truncated:  # which nodes are kept is the walk's choice: edges are not checkable
            return min(len(nodes), self.node_limit) + 1, True, -1
        ids = [root, *nodes]
        edges = self.conn.execute(
            "SELECT count(*) FROM asset_relationships WHERE source_id = ANY(%s) AND target_id = ANY(%s)",
            (ids, ids),
        ).fetchone()[0]
        return len(ids), False, edges


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Answer:
    ms: float
    nodes: int
    edges: int
    truncated: bool
    depth: int | None
    queries: int
    sql_ms: float


@dataclass
class GraphResult:
    label: str
    n: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    mean_nodes: float
    mean_edges: float
    truncated: int
    queries_per_request: float
    budget_exceeded: bool
    target_ms: float | None
    # the answers checked against the independent walk, and the mismatches
    checked: int = 0
    wrong: list[str] = field(default_factory=list)
    expectation: str = ""  # what the case must show besides the figures
    expectation_met: bool = True
    p95_untruncated_ms: float | None = None
    p95_truncated_ms: float | None = None
    note: str = ""  # said instead of a target
    sql_p50_ms: float = 0.0  # time in SQL statements (sent, run, rows received) per request
    sql_share: float = 0.0  # of the total time
    alone: int = 0  # answers with the start asset alone (no live neighbour)
    largest_whole: str | None = None  # the start of the largest untruncated answer
    nodes_p95: int = 0

    @property
    def ok(self) -> bool:
        timed_ok = self.target_ms is None or self.p95_ms <= self.target_ms
        return (
            self.n > 0
            and timed_ok
            and not self.budget_exceeded
            and not self.wrong
            and self.expectation_met
        )

    def line(self) -> str:
        target = (
            f"  (target p95 <= {self.target_ms:.0f}ms)"
            if self.target_ms is not None
            else f"  ({self.note})"
            if self.note
            else ""
        )
        extra = "  (time budget hit)" if self.budget_exceeded else ""
        return (
            f"graph {self.label:<28} n={self.n:<4} p50={self.p50_ms:.1f}ms p95={self.p95_ms:.1f}ms "
            f"max={self.max_ms:.1f}ms q/req={self.queries_per_request:.0f} "
            f"nodes={self.mean_nodes:.0f} edges={self.mean_edges:.0f} "
            f"truncated={self.truncated}/{self.n}{target} {'OK' if self.ok else 'MISSED'}{extra}"
        )


class SqlTimer:
    """Counts the statements the app sends and the time they take (execute to last row in:
    psycopg's client-side cursors receive the whole result in execute)."""

    def __init__(self, app: Any) -> None:
        from webapp.extensions import db

        with app.app_context():
            self.engine = db.engine
        self.queries = 0
        self.seconds = 0.0
        self._started: dict[int, float] = {}

    def _before(self, conn: Any, cursor: Any, *args: Any) -> None:
        self._started[id(cursor)] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, *args: Any) -> None:
        self.queries += 1
        self.seconds += time.perf_counter() - self._started.pop(id(cursor), time.perf_counter())

    def __enter__(self) -> SqlTimer:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def take(self) -> tuple[int, float]:
        """(statements, milliseconds) since the last call."""
        taken = self.queries, self.seconds * 1000
        self.queries, self.seconds = 0, 0.0
        return taken


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered)) - 1))]


class Requester:
    """One graph request as a client makes it: the API when it has the endpoint, else the
    service functions the endpoint calls, with the JSON encoding."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {token}"}
        self.via_api = any(
            rule.rule.startswith("/api/v1/assets/") and rule.rule.endswith("/graph")
            for rule in app.url_map.iter_rules()
        )

    @property
    def path(self) -> str:
        return (
            "GET /api/v1/assets/{id}/graph"
            if self.via_api
            else "relationships.graph() + graph_dict() + JSON (no API endpoint yet)"
        )

    def graph(
        self, asset_id: uuid.UUID, direction: str, depth: int
    ) -> tuple[dict[str, Any], float]:
        if self.via_api:
            url = f"/api/v1/assets/{asset_id}/graph?direction={direction}&depth={depth}"
            t0 = time.perf_counter()
            response = self.client.get(url, headers=self.headers)
            body = response.get_data()
            elapsed = time.perf_counter() - t0
            if response.status_code != 200:
                raise RequestFailed(
                    f"GET {url} answered HTTP {response.status_code}: {body[:300]!r}"
                )
            return json.loads(body), elapsed * 1000
        from webapp.extensions import db
        from webapp.services import relationships

        t0 = time.perf_counter()
        with self.app.app_context():
            g = relationships.graph(db.session, asset_id, direction=direction, depth=depth)  # type: ignore[arg-type]
            body = json.dumps(relationships.graph_dict(g))
            db.session.remove()
        elapsed = time.perf_counter() - t0
        return json.loads(body), elapsed * 1000

    def impact(self, asset_id: uuid.UUID) -> tuple[int, bool, float]:
        from webapp.extensions import db
        from webapp.services import relationships

        t0 = time.perf_counter()
        with self.app.app_context():
            result = relationships.impact(db.session, asset_id)
            size = len(result.assets)
            db.session.remove()
        return size, result.truncated, (time.perf_counter() - t0) * 1000


class RequestFailed(Exception):
    pass


def run_case(
    requester: Requester,
    oracle: Oracle,
    label: str,
    starts: list[uuid.UUID],
    direction: str,
    depth: int,
    target_ms: float | None,
    expect: tuple[str, Callable[[list[Answer]], bool]] | None = None,
) -> GraphResult:
    """Warm up on the starts once, then time one request per start; check every answer."""
    for asset_id in starts:
        requester.graph(asset_id, direction, depth)
    answers: list[Answer] = []
    budget_exceeded = False
    deadline = time.perf_counter() + CASE_TIME_BUDGET_S
    with SqlTimer(requester.app) as sql_timer:
        for i, asset_id in enumerate(starts):
            sql_timer.take()
            body, ms = requester.graph(asset_id, direction, depth)
            queries, sql_ms = sql_timer.take()
            answers.append(
                Answer(
                    ms,
                    len(body["nodes"]),
                    len(body["edges"]),
                    bool(body.get("truncated")),
                    body.get("depth"),
                    queries,
                    sql_ms,
                )
            )
            if time.perf_counter() > deadline:
                budget_exceeded = i + 1 < len(starts)
                break
    wrong = []
    for asset_id, answer in zip(starts, answers, strict=False):
        nodes, truncated, edges = oracle.expect(asset_id, direction, depth)
        got = (answer.nodes, answer.truncated, answer.edges if edges >= 0 else -1)
        if got != (nodes, truncated, edges):
            wrong.append(
                f"{asset_id} {direction} depth={depth}: nodes/truncated/edges {got}, "
                f"expected {(nodes, truncated, edges)}"
            )
        if depth > oracle.max_depth and answer.depth not in (None, oracle.max_depth):
            wrong.append(
                f"{asset_id} depth={depth}: answered depth {answer.depth}, "
                f"expected the cap {oracle.max_depth}"
            )
    times = [a.ms for a in answers]
    cut = [a.ms for a in answers if a.truncated]
    whole = [a.ms for a in answers if not a.truncated]
    met = expect[1](answers) if expect else True
    return GraphResult(
        label=label,
        n=len(answers),
        p50_ms=statistics.median(times),
        p95_ms=percentile(times, 0.95),
        max_ms=max(times),
        mean_nodes=statistics.fmean(a.nodes for a in answers),
        mean_edges=statistics.fmean(a.edges for a in answers),
        truncated=len(cut),
        queries_per_request=statistics.fmean(a.queries for a in answers),
        budget_exceeded=budget_exceeded,
        target_ms=target_ms,
        checked=len(answers),
        wrong=wrong,
        expectation=expect[0] if expect else "",
        expectation_met=met,
        p95_untruncated_ms=percentile(whole, 0.95) if whole else None,
        p95_truncated_ms=percentile(cut, 0.95) if cut else None,
        sql_p50_ms=statistics.median(a.sql_ms for a in answers),
        sql_share=sum(a.sql_ms for a in answers) / sum(times),
        alone=sum(a.nodes == 1 for a in answers),
        largest_whole=max(
            ((a.nodes, str(i)) for i, a in zip(starts, answers, strict=False) if not a.truncated),
            default=(0, None),
        )[1],
        nodes_p95=int(percentile([a.nodes for a in answers], 0.95)),
    )


def run_impact(requester: Requester, starts: list[uuid.UUID]) -> GraphResult:
    for asset_id in starts:
        requester.impact(asset_id)
    times, sizes, sql_times, cut, queries = [], [], [], 0, 0
    with SqlTimer(requester.app) as sql_timer:
        deadline = time.perf_counter() + CASE_TIME_BUDGET_S
        budget_exceeded = False
        for i, asset_id in enumerate(starts):
            sql_timer.take()
            size, truncated, ms = requester.impact(asset_id)
            n, sql_ms = sql_timer.take()
            queries += n
            times.append(ms)
            sql_times.append(sql_ms)
            sizes.append(size)
            cut += truncated
            if time.perf_counter() > deadline:
                budget_exceeded = i + 1 < len(starts)
                break
    return GraphResult(
        label="impact (service, 10 levels)",
        n=len(times),
        p50_ms=statistics.median(times),
        p95_ms=percentile(times, 0.95),
        max_ms=max(times),
        mean_nodes=statistics.fmean(sizes),
        mean_edges=0.0,
        truncated=cut,
        queries_per_request=queries / len(times),
        budget_exceeded=budget_exceeded,
        target_ms=None,
        sql_p50_ms=statistics.median(sql_times),
        sql_share=sum(sql_times) / sum(times),
    )


# --- plans --------------------------------------------------------------------------------------


@dataclass
class PlanCheck:
    label: str
    statement: str
    ms: float
    rows: int
    problems: list[str]
    nodes: list[str]
    plan: str


def check_plans(app: Any, cases: list[tuple[str, uuid.UUID, str, int]]) -> list[PlanCheck]:
    """EXPLAIN (ANALYZE, BUFFERS) every statement the API's graph call issues; flag sequential scans of
    the big tables, hash joins or sorts over them, and JIT."""
    from bench.pages import captured_sql
    from webapp.extensions import db
    from webapp.services import relationships

    checks = []
    for label, asset_id, direction, depth in cases:
        with captured_sql(app) as statements, app.app_context():
            # what the API answers with (on PostgreSQL: one statement walks and builds the JSON)
            relationships.graph_json(db.session, asset_id, direction=direction, depth=depth)  # type: ignore[arg-type]
            db.session.remove()
        for statement, params in statements:
            if "asset_relationships" not in statement and "FROM assets" not in statement:
                continue
            if "json_agg" in statement:
                kind = "graph statement"
            elif "RECURSIVE" in statement.upper():
                way = "down" if "provider_id = walk.node" in statement else "up"
                kind = f"walk {way}"
            else:
                kind = "edges" if "asset_relationships" in statement else "assets"
            if kind == "assets" and "= ANY" not in statement:
                continue  # the root by primary key
            with app.app_context(), db.engine.connect() as conn:
                rows = conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, params
                ).scalar_one()
                text_plan = "\n".join(
                    conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                    .scalars()
                    .all()
                )
                conn.rollback()
            plan = rows[0] if isinstance(rows, list) else json.loads(rows)[0]
            problems: list[str] = []
            kinds: list[str] = []

            def visit(
                node: dict[str, Any], problems: list[str] = problems, kinds: list[str] = kinds
            ) -> None:
                name = node["Node Type"]
                relation = node.get("Relation Name")
                index = node.get("Index Name")
                kinds.append(name + (f" {index}" if index else f" {relation}" if relation else ""))
                if name == "Seq Scan" and relation in ("asset_relationships", "assets"):
                    problems.append(f"Seq Scan on {relation} ({node.get('Actual Rows')} rows)")
                if name in ("Hash Join", "Merge Join") and node.get("Plan Rows", 0) > 10_000:
                    problems.append(f"{name} planned for {node['Plan Rows']:,} rows")
                if name == "Hash" and node.get("Plan Rows", 0) > 10_000:
                    problems.append(f"Hash of {node['Plan Rows']:,} rows")
                for child in node.get("Plans", []):
                    visit(child)

            visit(plan["Plan"])
            if "JIT" in plan:
                problems.append(
                    f"JIT compiled ({plan['JIT'].get('Timing', {}).get('Total', 0):.0f} ms)"
                )
            checks.append(
                PlanCheck(
                    f"{label}: {kind}",
                    statement,
                    plan["Execution Time"],
                    plan["Plan"]["Actual Rows"],
                    problems,
                    kinds,
                    text_plan,
                )
            )
    return checks


# --- the workload -------------------------------------------------------------------------------


@dataclass
class GraphReport:
    database: str
    assets: int
    built: Built
    path: str
    results: list[GraphResult]
    plans: list[dict[str, Any]]
    misses: list[str]


def run(
    url: str,
    n_assets: int,
    n_relationships: int,
    n_requests: int,
    explain: bool = False,
    verbose: bool = False,
    plain_p95_ms: float | None = None,
) -> GraphReport:
    """`plain_p95_ms`: the plain /assets page's p95 in the same run, the graph's bound (SPEC
    §11: p95 <= 1x it); TARGET_P95_MS when the pages were not measured."""
    target_ms = plain_p95_ms or TARGET_P95_MS
    from bench.run import api_token, prepare  # the same build and migration as the other workloads
    from webapp.services.graph import MAX_DEPTH, NODE_LIMIT

    data.ensure_database(url)
    app, _ = prepare(url, n_assets, False)
    assets = data.asset_count(url)
    print(
        f"\ngraph: {n_relationships:,} relationships over {assets:,} assets ({url.split('@')[-1]})",
        flush=True,
    )
    built = build(url, n_relationships)
    if built.seconds is None:
        print(f"data: {built.relationships:,} relationships already present, reused")
    else:
        print(
            f"data: built {built.relationships:,} relationships in {built.seconds:.1f}s ("
            + ", ".join(f"{k} {v:.1f}s" for k, v in built.phases.items())
            + "); "
            + ", ".join(f"{k} {v:,}" for k, v in built.by_kind.items()),
            flush=True,
        )

    requester = Requester(app, api_token(app))
    print(
        f"measured through {requester.path}; server time of each request, after one "
        "warm-up pass; every answer checked against an independent breadth-first walk"
    )
    oracle = Oracle(url, MAX_DEPTH, NODE_LIMIT)
    small = max(5, n_requests // 10)
    starts = random_assets(url, n_requests, SEED)
    hubs = hub_assets(url, small, NODE_LIMIT)
    heads = pipeline_heads(url, small, MAX_DEPTH + 2)
    unbounded = heads + random_assets(url, small, SEED + 1)

    def all_truncated(answers: list[Answer]) -> bool:
        return all(a.truncated and a.nodes == NODE_LIMIT + 1 for a in answers)

    def heads_truncated(answers: list[Answer]) -> bool:
        return all(a.truncated for a in answers[: len(heads)]) and all(
            a.depth in (None, MAX_DEPTH) for a in answers
        )

    results: list[GraphResult] = []
    try:
        cases = [
            ("both depth=5 random", starts, "both", 5, target_ms, None),
            (
                f"down depth=5 hubs ({min((c for _, c in hubs), default=0):,}+ deps)",
                [h for h, _ in hubs],
                "down",
                5,
                None,
                (f"every answer truncated at the {NODE_LIMIT}-node cap", all_truncated),
            ),
            (
                "both depth=1000 (unbounded)",
                unbounded,
                "both",
                1000,
                None,
                (
                    f"depth capped to {MAX_DEPTH} in every answer; the {len(heads)} heads of pipelines "
                    f"longer than the cap truncated",
                    heads_truncated,
                ),
            ),
        ]
        for label, ids, direction, depth, target, expect in cases:
            if not ids:
                print(f"graph {label}: no such start asset in the data MISSED")
                results.append(GraphResult(label, 0, 0, 0, 0, 0, 0, 0, 0, False, target))
                continue
            result = run_case(requester, oracle, label, ids, direction, depth, target, expect)
            if target is None:
                result.note = "worst case, no target of its own"
            results.append(result)
            print(result.line(), flush=True)
            split = [f"nodes p95 {result.nodes_p95}, {result.alone} alone"]
            if result.p95_untruncated_ms is not None:
                split.append(
                    f"{result.n - result.truncated} whole answers p95="
                    f"{result.p95_untruncated_ms:.1f}ms"
                )
            if result.p95_truncated_ms is not None:
                split.append(f"{result.truncated} truncated p95={result.p95_truncated_ms:.1f}ms")
            print(
                "    " + ", ".join(split) + f"; in SQL: p50 {result.sql_p50_ms:.1f}ms, "
                f"{result.sql_share:.0%} of all the time; answers checked: {result.checked}, "
                + ("all right" if not result.wrong else f"{len(result.wrong)} WRONG")
            )
            for problem in result.wrong[:5]:
                print(f"    WRONG {problem}")
            if result.expectation:
                print(f"    {result.expectation}: {'OK' if result.expectation_met else 'MISSED'}")
        impact = run_impact(requester, starts)
        results.append(impact)
        impact.note = f"no target of its own; the graph's is {target_ms:.0f}ms"
        print(impact.line().replace(" edges=0", ""), flush=True)
        print(f"    in SQL: p50 {impact.sql_p50_ms:.1f}ms, {impact.sql_share:.0%} of all the time")
    except RequestFailed as exc:
        print(f"graph: MISSED, a request failed: {exc}")
        results.append(
            GraphResult(
                str(exc)[:80], 0, 0, 0, 0, 0, 0, 0, 0, False, target_ms, wrong=[str(exc)]
            )
        )
    finally:
        oracle.close()

    # plans: the largest untruncated random answer, a hub, an unbounded pipeline head
    largest = results[0].largest_whole if results else None
    plan_cases = [("largest whole random", uuid.UUID(largest) if largest else starts[0], "both", 5)]
    if hubs:
        plan_cases.append(("hub down", hubs[0][0], "down", 5))
    if heads:
        plan_cases.append(("pipeline head, depth 1000", heads[0], "both", 1000))
    plans = check_plans(app, plan_cases)
    bad = [p for p in plans if p.problems]
    print(
        "plans (EXPLAIN ANALYZE): "
        + "; ".join(
            f"{p.label} {p.ms:.1f}ms {p.rows:,} rows"
            + (f" [{', '.join(p.problems)}]" if p.problems else "")
            for p in plans
        )
    )
    walk_nodes = sorted({n for p in plans if "walk" in p.label or "graph" in p.label
                         for n in p.nodes})
    print(f"    walk plan nodes: {', '.join(walk_nodes)}")
    print(
        "    "
        + (
            "no sequential scan, big hash or JIT: OK"
            if not bad
            else f"MISSED: {len(bad)} statements with a bad plan"
        )
    )
    if explain or verbose or bad:
        for p in plans:
            print(f"\n--- {p.label}\n{p.statement}\n{p.plan}")

    misses = [f"graph {r.label}" for r in results if not r.ok]
    misses += [f"graph plan {p.label}" for p in bad]
    return GraphReport(
        database=url.split("@")[-1],
        assets=assets,
        built=built,
        path=requester.path,
        results=results,
        plans=[
            {"label": p.label, "ms": p.ms, "rows": p.rows, "problems": p.problems, "nodes": p.nodes}
            for p in plans
        ],
        misses=misses,
    )
