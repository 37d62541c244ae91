"""The inventory list: filters, search, sorting and keyset pagination (never OFFSET)."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    func,
    literal_column,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, array
from sqlalchemy.orm import Session, defer

from webapp import policy as policy_controls
from webapp.models import (
    Asset,
    AssetStatus,
    Criticality,
    DataClassification,
    Engine,
    Environment,
    PolicyResult,
    PolicyStatus,
    Tag,
    asset_tags,
)
from webapp.services import cached_counts, listing, settings

T = TypeVar("T")
# past this many matches a page says "more than 1,000" instead of counting them all
COUNT_CAP = 1_000
CRITICALITY_ORDER = {c.value: i for i, c in enumerate(Criticality, start=1)}
CRITICALITY_RANK = case(CRITICALITY_ORDER, value=Asset.criticality, else_=0)
SORTS: dict[str, ColumnElement[Any]] = {
    "name": Asset.name,
    "engine": Asset.engine,
    "environment": Asset.environment,
    "status": Asset.status,
    "criticality": CRITICALITY_RANK,
    "owner": func.coalesce(Asset.owner, ""),
    "host": func.coalesce(Asset.host, ""),
    "updated_at": Asset.updated_at,
    "created_at": Asset.created_at,
}
DATETIME_SORTS = {"updated_at", "created_at"}
# sorts with an (expression, id) index: a searched page in these orders is probed (_probed_page)
PROBED_SORTS = {"name", "updated_at"}
# the fewest rows, in sort order, a searched page looks at before collecting every match instead;
# on PostgreSQL the window is as many rows as the planner expects to match (_probed_page)
PROBE_ROWS = 1_000
SEEN = ("unverified", "stale", "fresh")
ENUM_FILTERS = {
    "engine": Engine,
    "environment": Environment,
    "status": AssetStatus,
    "criticality": Criticality,
    "data_classification": DataClassification,
}


class Sort(listing.Param):
    """A key of SORTS, prefixed with `-` for descending."""

    message = f"Sort by one of: {', '.join(SORTS)} (prefix - for descending)."

    def convert(self, raw: str) -> str:
        if raw.removeprefix("-") not in SORTS:
            raise ValueError(self.message)
        return raw


def _choice(enum_cls: type[Any]) -> Any:
    """A filter on an enum column; the argument may repeat (`engine=mysql&engine=postgresql`)."""
    return listing.arg(listing.Choice([m.value for m in enum_cls], many=True,
                                      message=f"Choose one of: {', '.join(enum_cls.__members__)}."))


@dataclass
class AssetQuery:
    q: str = listing.arg(listing.Search(), default="")
    engine: list[str] | None = _choice(Engine)
    environment: list[str] | None = _choice(Environment)
    status: list[str] | None = _choice(AssetStatus)
    criticality: list[str] | None = _choice(Criticality)
    data_classification: list[str] | None = _choice(DataClassification)
    owner: str | None = listing.arg(listing.Search())  # a prefix, any case
    tag: str | None = listing.arg(listing.Search(lower=True))
    stale: bool | None = listing.arg(listing.Flag())
    unverified: bool | None = listing.arg(listing.Flag())  # never reported by a discovery import
    # SPEC §6: never seen by discovery, stale (missed by covering scans), or neither
    seen: str | None = listing.arg(listing.Choice(SEEN, message="Choose unverified, stale or fresh."))
    unowned: bool | None = listing.arg(listing.Flag())  # no owner set
    # policy (SPEC §12): failing any control; or a control's results of given statuses (fail
    # when none is given), read from the stored results
    policy_failing: bool | None = listing.arg(listing.Flag())
    policy: str | None = listing.arg(listing.Choice(list(policy_controls.CONTROLS),
                                                    message="Choose a policy control by its id."))
    policy_status: list[str] | None = listing.arg(listing.Choice(
        [s.value for s in PolicyStatus], many=True,
        message="Choose pass, fail, unknown or excepted."))
    deleted: bool = False  # True: only the trash
    include_deleted: bool = listing.arg(listing.Flag(), default=False)
    sort: str = listing.arg(Sort(), default="name")
    limit: int = listing.arg(listing.Whole(1, 500), default=50)
    # a cursor is checked against its sort when the page is read (decode_cursor)
    after: str | None = listing.arg(listing.Raw())
    before: str | None = listing.arg(listing.Raw())
    cursor: str | None = listing.arg(listing.Raw())  # the API's name for `after`
    # `count=exact`: count every match, however many (past COUNT_CAP the page estimates)
    count: str | None = listing.arg(listing.Choice(["exact"]))

    @property
    def sort_key(self) -> str:
        return self.sort.removeprefix("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")


@dataclass
class AssetPage:
    items: list[Any]  # Asset objects; ListedAsset rows when list_assets was given `fields`
    total: int
    total_is_capped: bool
    next_cursor: str | None
    prev_cursor: str | None
    query: AssetQuery = field(repr=False)
    # past COUNT_CAP: the planner's estimate of the matches (PostgreSQL), shown as "about N"
    estimate: int | None = None


def parse_query(args: Mapping[str, Any], *, max_limit: int = 500) -> AssetQuery:
    """Build an AssetQuery from request arguments; raise ValidationFailed naming bad ones."""
    limit = listing.Whole(1, max_limit, message=f"Enter a number from 1 to {max_limit}.")
    query = listing.parse(AssetQuery, args, params={"limit": limit})
    query.after = query.after or query.cursor
    return query


def encode_cursor(sort_key: str, value: Any, row_id: uuid.UUID) -> str:
    return listing.encode_cursor(sort_key, value, row_id)


def _sort_part(sort_key: str) -> listing.Part:
    """What a cursor's sort value must be: the sort expression's type, or the database refuses
    the comparison (a 500) or compares across types (a wrong page)."""
    if sort_key in DATETIME_SORTS:
        return listing.MOMENT
    if sort_key == "criticality":
        return listing.Integer(0, len(CRITICALITY_ORDER))
    return listing.TEXT


def decode_cursor(cursor: str, sort_key: str) -> tuple[Any, uuid.UUID]:
    _, value, row_id = listing.decode_cursor(cursor, listing.Exact(sort_key), _sort_part(sort_key),
                                             listing.ID)
    return value, row_id


def filtered(session: Session, query: AssetQuery) -> Select[tuple[Asset]]:
    """The WHERE part of the list, shared by the page, the count and exports."""
    scope, match = _conditions(query, Asset, _stale_cutoff(session, query))
    return select(Asset).where(*scope, *match)


def is_stale(entity: Any, cutoff: datetime) -> ColumnElement[bool]:
    """Active, seen by discovery before, and missed by covering scans since before `cutoff`
    (`stale_after_days` ago): a run that covered its host and port, or its cloud account and
    region, has not seen it since then, and nothing has seen it since (SPEC §6; `missed_since`
    is set by `services.coverage` and cleared by a sighting). Served by ix_assets_missed_name."""
    return and_(
        entity.missed_since.is_not(None),
        entity.missed_since < cutoff,
        entity.status == AssetStatus.active,
        entity.last_seen_at.is_not(None),
    )


def seen_condition(entity: Any, seen: str, cutoff: datetime) -> ColumnElement[bool]:
    """`seen=unverified|stale|fresh` (SPEC §6): fresh is seen by discovery and not stale."""
    if seen == "unverified":
        return is_unverified(entity)
    if seen == "stale":
        return is_stale(entity, cutoff)
    return and_(~is_unverified(entity), ~is_stale(entity, cutoff))


def is_unverified(entity: Any) -> ColumnElement[bool]:
    """No discovery import has ever reported the asset: known only from manual entry or the API
    (SPEC §6; the policy control lifecycle.not_unverified reads the same two columns)."""
    return and_(entity.first_seen_at.is_(None), entity.last_seen_at.is_(None))


def is_unowned(entity: Any) -> ColumnElement[bool]:
    """No owner set (a blank one counts as none, as the policy control ownership.owner_set
    reads it)."""
    return or_(entity.owner.is_(None), func.trim(entity.owner) == "")


def _policy_conditions(query: AssetQuery, entity: Any) -> list[ColumnElement[bool]]:
    """The policy filters as EXISTS probes of `policy_results` (its primary key leads with the
    asset; `(status, asset_id)` and `(control_id, status)` serve the rest)."""
    conditions: list[ColumnElement[bool]] = []
    if query.policy_failing is not None:
        failing = exists().where(PolicyResult.asset_id == entity.id,
                                 PolicyResult.status == PolicyStatus.fail)
        conditions.append(failing if query.policy_failing else ~failing)
    if query.policy or query.policy_status:
        statuses = query.policy_status or [PolicyStatus.fail.value]
        probe = exists().where(PolicyResult.asset_id == entity.id,
                               PolicyResult.status.in_([PolicyStatus(s) for s in statuses]))
        if query.policy:
            probe = probe.where(PolicyResult.control_id == query.policy)
        conditions.append(probe)
    return conditions


def _stale_cutoff(session: Session, query: AssetQuery) -> datetime | None:
    wanted = query.stale is not None or query.seen in ("stale", "fresh")
    return settings.stale_cutoff(session) if wanted else None


def _conditions(
    query: AssetQuery, entity: Any, stale_cutoff: datetime | None
) -> tuple[list[ColumnElement[bool]], list[ColumnElement[bool]]]:
    """(scope, match): which rows are in view at all (live, trash, both), and the filters.

    `entity` is Asset or an alias of it, so the same filters can apply to a subquery.
    """
    scope: list[ColumnElement[bool]] = []
    if query.deleted:
        scope.append(entity.deleted_at.is_not(None))
    elif not query.include_deleted:
        scope.append(entity.deleted_at.is_(None))
    return scope, _match(query, entity, stale_cutoff)


def _match(query: AssetQuery, entity: Any, stale_cutoff: datetime | None) -> list[ColumnElement[bool]]:
    """The filters alone: a subquery already scoped (the probe window) may lack `deleted_at`."""
    match: list[ColumnElement[bool]] = []
    for term in query.q.lower().split():
        match.append(entity.search_text.contains(term, autoescape=True))
    for name in ENUM_FILTERS:
        values = getattr(query, name)
        if isinstance(values, str):  # a caller in Python may give one value
            values = [values]
        if values:
            column = getattr(entity, name)
            match.append(column == values[0] if len(values) == 1 else column.in_(values))
    if query.owner:
        match.append(func.lower(entity.owner).startswith(query.owner.lower(), autoescape=True))
    if query.tag:
        match.append(
            exists()
            .where(asset_tags.c.asset_id == entity.id)
            .where(asset_tags.c.tag_id == Tag.id)
            .where(Tag.name == query.tag)
        )
    if query.stale is not None:
        condition = is_stale(entity, stale_cutoff)
        match.append(condition if query.stale else ~condition)
    if query.seen:
        match.append(seen_condition(entity, query.seen, stale_cutoff))  # type: ignore[arg-type]
    for flag, condition_of in ((query.unverified, is_unverified), (query.unowned, is_unowned)):
        if flag is not None:  # built only when asked for: each costs a page tens of expressions
            condition = condition_of(entity)
            match.append(condition if flag else ~condition)
    match.extend(_policy_conditions(query, entity))
    return match


def sort_value(asset: Asset, sort_key: str) -> Any:
    """The value of the sort expression for one row, as the database computes it."""
    if sort_key == "criticality":
        return CRITICALITY_ORDER.get(asset.criticality.value if asset.criticality else "", 0)
    value = getattr(asset, sort_key)
    if sort_key in ("owner", "host"):
        return value or ""
    return value.value if hasattr(value, "value") else value


def _sort_expression(entity: Any, sort_key: str) -> ColumnElement[Any]:
    """SORTS[sort_key], on `entity` (Asset or an alias of it)."""
    if entity is Asset:
        return SORTS[sort_key]
    if sort_key == "criticality":
        return case(CRITICALITY_ORDER, value=entity.criticality, else_=0)
    if sort_key in ("owner", "host"):
        return func.coalesce(getattr(entity, sort_key), "")
    return getattr(entity, sort_key)


def _order(
    sort_expr: ColumnElement[Any], row_id: ColumnElement[Any], descending: bool
) -> list[Any]:
    return [sort_expr.desc(), row_id.desc()] if descending else [sort_expr.asc(), row_id.asc()]


def _past(
    sort_expr: ColumnElement[Any],
    row_id: ColumnElement[Any],
    position: tuple[Any, uuid.UUID],
    descending: bool,
) -> ColumnElement[bool]:
    """Rows after the keyset `position` in the page's direction."""
    pair = tuple_(sort_expr, row_id)
    return pair < position if descending else pair > position


def list_assets(session: Session, query: AssetQuery, *, with_total: bool = True,
                fields: Collection[str] | None = None) -> AssetPage:
    """One page of assets in a stable order, with cursors to the next and previous pages.

    `fields`: load only these attributes of each asset (and its id, name, sort column and tags),
    for a page that shows no more; the JSON columns' parsing was most of the list's loading."""
    sort_expr = SORTS[query.sort_key]
    stale_cutoff = _stale_cutoff(session, query)
    scope, match = _conditions(query, Asset, stale_cutoff)
    base = select(Asset).where(*scope, *match)
    backwards = query.before is not None
    descending = query.descending != backwards
    cursor = query.before or query.after
    position = decode_cursor(cursor, query.sort_key) if cursor else None
    planned = None  # the planner's estimate of the matches, read at most once
    if (query.q.split() or query.owner) and query.sort_key in PROBED_SORTS:
        planned = _cached(session, "plan", query, stale_cutoff, lambda: planned_rows(session, base))
        window = max(PROBE_ROWS, planned or 0)
        stmt = _probed_page(query, scope, match, stale_cutoff, position, descending, window)
    else:
        stmt = listing.keyset(base, (sort_expr, Asset.id), descending=descending,
                              limit=query.limit, position=position)
    # search_text is only for filtering: do not carry it into every row
    if fields is None:
        rows: list[Any] = list(session.scalars(stmt.options(defer(Asset.search_text))))
    else:
        rows = listed_rows(session, stmt, {"id", "name", query.sort_key, *fields})
    page = listing.page(rows, limit=query.limit, backwards=backwards, from_cursor=bool(cursor),
                        key=lambda asset: (query.sort_key, sort_value(asset, query.sort_key),
                                           asset.id))
    total, capped, estimated = 0, False, None
    if with_total and query.count == "exact":
        total = session.scalar(select(func.count()).select_from(base.order_by(None).subquery())) or 0
    elif with_total:
        def counted() -> tuple[int, bool, int | None]:
            n, over = count(session, base)
            estimate = (planned_rows(session, base) if planned is None else planned) if over else None
            return n, over, None if estimate is None else max(estimate, COUNT_CAP + 1)

        total, capped, estimated = _cached(session, "total", query, stale_cutoff, counted)
    return AssetPage(page.items, total, capped, page.next_cursor, page.prev_cursor, query,
                     estimated)


@dataclass(frozen=True, slots=True)
class ListedTag:
    """A tag as the list shows it under an asset's name."""

    name: str
    colour: str


class ListedAsset(SimpleNamespace):
    """One row of a read-only list: the asset's listed columns as attributes, and its tags."""

    id: uuid.UUID
    name: str
    tags: list[ListedTag]

    @property
    def has_connection_string(self) -> bool:  # as Asset's, when the row has the column
        return getattr(self, "connection_string_encrypted", None) is not None


def listed_rows(session: Session, stmt: Select[tuple[Asset]], fields: Collection[str]
                ) -> list[Any]:
    """The rows of a page's statement as plain rows of only `fields` (every sort key is a
    column's name) with their tags (name order), not as ORM objects: no identity map, no JSON
    column parsed, nothing a list does not show. On PostgreSQL one statement carries each
    row's tags as an array of (name, colour) pairs; elsewhere a second statement reads them.
    Both run on the session's connection as Core statements (no ORM loading context)."""
    columns = [getattr(Asset, name) for name in sorted(fields)]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        pairs = (select(func.array_agg(aggregate_order_by(array([Tag.name, Tag.colour]), Tag.name)))
                 .select_from(asset_tags).join(Tag, Tag.id == asset_tags.c.tag_id)
                 .where(asset_tags.c.asset_id == Asset.id).scalar_subquery())
        listed = []
        names = [column.key for column in columns]  # attribute names (`metadata_`, not `metadata`)
        for *values, tag_pairs in connection.execute(stmt.with_only_columns(*columns, pairs)):
            row = ListedAsset(**dict(zip(names, values, strict=True)))
            row.tags = [ListedTag(name, colour) for name, colour in tag_pairs] if tag_pairs else []
            listed.append(row)
        return listed
    names = [column.key for column in columns]  # attribute names (`metadata_`, not `metadata`)
    rows = [ListedAsset(**dict(zip(names, values, strict=True)), tags=[])
            for values in connection.execute(stmt.with_only_columns(*columns))]
    if rows:
        by_id = {row.id: row for row in rows}
        for asset_id, name, colour in connection.execute(
            select(asset_tags.c.asset_id, Tag.name, Tag.colour)
            .join(Tag, Tag.id == asset_tags.c.tag_id)
            .where(asset_tags.c.asset_id.in_(list(by_id)))
            .order_by(Tag.name)
        ):
            by_id[asset_id].tags.append(ListedTag(name, colour))
    return rows


def _probed_page(
    query: AssetQuery,
    scope: list[ColumnElement[bool]],
    match: list[ColumnElement[bool]],
    stale_cutoff: datetime | None,
    position: tuple[Any, uuid.UUID] | None,
    descending: bool,
    window_rows: int = PROBE_ROWS,
) -> Select[tuple[Asset]]:
    """A searched page, in one statement, without PostgreSQL's "walk the sort index" trap.

    Left to itself, the planner answers `WHERE search_text LIKE '%term%' ORDER BY name LIMIT 51`
    by walking the name index until 51 rows match. That is fast when matches are dense and
    spread out, and very slow when they are rare or clustered in the sort order (a term that
    is part of many names starting with "o" walks every name from "a" on: 15 ms at 100,000
    assets, 220 ms at 1,000,000). So the statement does two bounded things instead:

    1. probe: walk at most `window_rows` rows in sort order, stopping at the limit+1-th match; if
       that many matched, they are the page;
    2. otherwise: collect every matching row with the trigram index (a MATERIALIZED CTE, so the
       planner cannot turn it back into an index walk) and sort those; the CTE is only read
       (and so only computed) when the probe came up short.

    The window is the planner's estimate of the matches (at least PROBE_ROWS): walking a row and
    collecting a match cost about the same (each reads a heap row), so a dense term is found by
    the walk long before the window ends ("mysql", 18 % of 1,000,000 but absent from the first
    4,600 names: a fixed 1,000-row probe collected all 180,000 matches, 1.5 s), a sparse one is
    collected after a short walk, and the worst case, a dense term absent from a long stretch
    of the order, costs twice the collection.

    The rows are exactly those of the plain `ORDER BY ... LIMIT` query (`make bench` checks).
    """
    key = query.sort_key
    n = query.limit + 1
    sort_expr = SORTS[key]
    in_scope = select(*_window_columns(query)).where(*scope)
    if position is not None:
        in_scope = in_scope.where(_past(sort_expr, Asset.id, position, descending))
    window = (
        in_scope.order_by(*_order(sort_expr, Asset.id, descending))
        .limit(window_rows)
        .subquery("probe_window")
    )
    # the subquery's columns, not an ORM alias of Asset: an alias builds every attribute's
    # expression anew on each page (a third of a searched page's Python time)
    windowed = window.c
    windowed_match = _match(query, windowed, stale_cutoff)
    windowed_sort = _sort_expression(windowed, key)
    probe = (
        select(windowed.id.label("id"), windowed_sort.label("k"))
        .where(*windowed_match)
        .order_by(*_order(windowed_sort, windowed.id, descending))
        .limit(n)
        .cte("probe")
    )
    probe_rows = select(func.count()).select_from(probe).scalar_subquery()
    matches_stmt = select(Asset.id.label("id"), sort_expr.label("k")).where(*scope, *match)
    if position is not None:
        matches_stmt = matches_stmt.where(_past(sort_expr, Asset.id, position, descending))
    matches = matches_stmt.cte("matches").prefix_with("MATERIALIZED", dialect="postgresql")
    first_matches = (
        select(matches.c.id, matches.c.k)
        .where(probe_rows < n)
        .order_by(*_order(matches.c.k, matches.c.id, descending))
        .limit(n)
        .subquery("first_matches")
    )
    page_ids = union_all(
        select(probe.c.id).where(probe_rows >= n),
        select(first_matches.c.id),
    ).subquery("page_ids")
    return (
        select(Asset)
        .join(page_ids, Asset.id == page_ids.c.id)
        .order_by(*_order(sort_expr, Asset.id, descending))
        .limit(n)
    )


# what a list's figures depend on: a commit that writes one of these tables recomputes them
COUNTED_TABLES = ("assets", "asset_tags", "policy_results")


# what does not change which rows a list selects: every other field of AssetQuery is a filter
NOT_FILTERS = frozenset({"sort", "limit", "after", "before", "cursor", "count"})


def _cached(session: Session, figure: str, query: AssetQuery, stale_cutoff: datetime | None,
            compute: Callable[[], T]) -> T:
    """A figure of the list `query` selects (its capped count, the planner's estimate) from
    the counts cache: the 50 users on the same list, and every page of it, count it once per
    commit that writes assets, tags or policy results (`cached_counts`). The key is the
    query's filters (not its page or sort), so every filter and search term is a figure of its
    own; a stale filter's cutoff is in it to the minute."""
    filters = [(f.name, getattr(query, f.name)) for f in dataclasses.fields(query) if f.name not in NOT_FILTERS]
    filters.append(("cutoff", stale_cutoff.isoformat(timespec="minutes") if stale_cutoff else None))
    key = hashlib.sha256(repr(filters).encode()).hexdigest()
    return cached_counts.read(f"assets:{figure}:{key}", COUNTED_TABLES, compute, session=session)


# the columns a window's filters read when they are only the search, the owner, a tag or a
# policy (tags and policy results are read by the asset's id): ix_assets_live_name_walk holds
# them all, so a walk in name order never reads the table
WINDOW_COLUMNS = (Asset.id, Asset.name, Asset.search_text, Asset.owner)


def _window_columns(query: AssetQuery) -> tuple[Any, ...]:
    """What the probe window selects: the narrow columns its filters need, or the whole row
    when another filter (an enum, staleness, the unowned or unverified flags) reads more."""
    other = (any(getattr(query, name) for name in ENUM_FILTERS) or query.seen
             or any(flag is not None for flag in (query.stale, query.unverified, query.unowned)))
    if query.sort_key == "name" and not other:
        return WINDOW_COLUMNS
    return (Asset,)


def count(session: Session, stmt: Select[tuple[Asset]]) -> tuple[int, bool]:
    """Exact count up to COUNT_CAP; past that the page says "more than COUNT_CAP"."""
    n = session.scalar(select(_capped_count(stmt))) or 0
    return min(n, COUNT_CAP), n > COUNT_CAP


def planned_rows(session: Session, stmt: Select[tuple[Asset]]) -> int | None:
    """The planner's estimate of how many rows `stmt` has (PostgreSQL; None elsewhere): one
    EXPLAIN, no rows read."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    rows = stmt.with_only_columns(literal_column("1"), maintain_column_froms=True).order_by(None)
    # expanding parameters (`status IN (…)` of the policy filters) rendered as plain ones, since
    # the statement is sent as text
    compiled = rows.compile(dialect=session.get_bind().dialect,
                            compile_kwargs={"render_postcompile": True})
    plan = session.connection().exec_driver_sql(
        f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar()
    return int(plan[0]["Plan"]["Plan Rows"]) if plan else 0


def _capped_count(stmt: Select[tuple[Asset]]) -> Any:
    """How many rows `stmt` has, counting no further than COUNT_CAP + 1 (a scalar subquery)."""
    # a constant, not the id: lets PostgreSQL count from any index that covers the filters
    rows = stmt.with_only_columns(literal_column("1"), maintain_column_froms=True)
    capped = rows.order_by(None).limit(COUNT_CAP + 1).subquery()
    return select(func.count()).select_from(capped).scalar_subquery()


OWNER_SUGGESTIONS = 15


def owner_suggestions(session: Session, prefix: str, *, limit: int = OWNER_SUGGESTIONS) -> list[str]:
    """Owners of live assets that start with `prefix` (any case), the most common first: what
    the owner filter offers as a person types. Nothing before the first character (nor for a
    prefix no owner could hold: a NUL)."""
    prefix = prefix.strip()
    if not prefix or "\x00" in prefix:
        return []
    owners = func.count().label("assets")
    return list(session.scalars(
        select(Asset.owner)
        .where(Asset.deleted_at.is_(None), Asset.owner.is_not(None),
               func.lower(Asset.owner).startswith(prefix.lower(), autoescape=True))
        .group_by(Asset.owner)
        .order_by(owners.desc(), Asset.owner)
        .limit(limit)
    ))
