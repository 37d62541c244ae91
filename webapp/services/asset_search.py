"""The inventory list: filters, search, sorting and keyset pagination (never OFFSET)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    func,
    literal_column,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.orm import Session, aliased, defer

from webapp.models import (
    Asset,
    AssetStatus,
    Criticality,
    DataClassification,
    Engine,
    Environment,
    Tag,
    asset_tags,
)
from webapp.services import settings
from webapp.services.errors import ValidationFailed
from webapp.services.text import UNSTORABLE

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
# how many rows, in sort order, a searched page looks at before collecting every match instead
PROBE_ROWS = 1_000
ENUM_FILTERS = {
    "engine": Engine,
    "environment": Environment,
    "status": AssetStatus,
    "criticality": Criticality,
    "data_classification": DataClassification,
}


@dataclass
class AssetQuery:
    q: str = ""
    engine: str | None = None
    environment: str | None = None
    status: str | None = None
    criticality: str | None = None
    data_classification: str | None = None
    owner: str | None = None
    tag: str | None = None
    stale: bool | None = None
    deleted: bool = False  # True: only the trash
    include_deleted: bool = False
    sort: str = "name"
    limit: int = 50
    after: str | None = None
    before: str | None = None

    @property
    def sort_key(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")


@dataclass
class AssetPage:
    items: list[Asset]
    total: int
    total_is_capped: bool
    next_cursor: str | None
    prev_cursor: str | None
    query: AssetQuery = field(repr=False)


def parse_query(args: dict[str, Any], *, max_limit: int = 500) -> AssetQuery:
    """Build an AssetQuery from request arguments; raise ValidationFailed naming bad ones."""
    errors: dict[str, str] = {}
    query = AssetQuery(q=(args.get("q") or "").strip()[:200])
    for name, enum_cls in ENUM_FILTERS.items():
        value = args.get(name) or None
        if value is not None and value not in enum_cls.__members__:
            errors[name] = f"Choose one of: {', '.join(enum_cls.__members__)}."
        setattr(query, name, value)
    query.owner = (args.get("owner") or "").strip() or None
    query.tag = (args.get("tag") or "").strip().lower() or None
    stale = args.get("stale")
    if stale in ("true", "1", "yes", True):
        query.stale = True
    elif stale in ("false", "0", "no", False):
        query.stale = False
    elif stale not in (None, ""):
        errors["stale"] = "Use true or false."
    include_deleted = args.get("include_deleted")
    query.include_deleted = include_deleted in ("true", "1", "yes", True)
    sort = args.get("sort") or "name"
    if sort.lstrip("-") not in SORTS:
        errors["sort"] = f"Sort by one of: {', '.join(SORTS)} (prefix - for descending)."
    else:
        query.sort = sort
    limit = args.get("limit")
    if limit not in (None, ""):
        try:
            query.limit = int(limit)
            if not 1 <= query.limit <= max_limit:
                raise ValueError
        except (TypeError, ValueError):
            errors["limit"] = f"Enter a number from 1 to {max_limit}."
    query.after = args.get("after") or args.get("cursor") or None
    query.before = args.get("before") or None
    if errors:
        raise ValidationFailed(errors, "Some filters are not valid.")
    return query


def encode_cursor(sort_key: str, value: Any, row_id: uuid.UUID) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort_key, value, str(row_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort_key: str) -> tuple[Any, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key, value, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if key != sort_key or not isinstance(row_id, str):
            raise ValueError
        # a cursor comes from the URL: its value must have the sort expression's type, or the
        # database refuses the comparison (a 500) or compares across types (a wrong page)
        if sort_key in DATETIME_SORTS:
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError
            value = value.astimezone(UTC)  # OverflowError near year 1 or 9999
        elif sort_key == "criticality":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError
            if not 0 <= value <= len(CRITICALITY_ORDER):  # a huge int overflows the driver
                raise ValueError
        elif not isinstance(value, str) or UNSTORABLE.search(value):  # NUL: PostgreSQL refuses
            raise ValueError
        return value, uuid.UUID(row_id)
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error, json.JSONDecodeError):
        raise ValidationFailed({"cursor": "This page link is not valid; start from the first page."}) from None


def filtered(session: Session, query: AssetQuery) -> Select[tuple[Asset]]:
    """The WHERE part of the list, shared by the page, the count and exports."""
    scope, match = _conditions(query, Asset, _stale_cutoff(session, query))
    return select(Asset).where(*scope, *match)


def is_stale(entity: Any, cutoff: datetime) -> ColumnElement[bool]:
    """Active, seen by an import before, and not seen since `cutoff` (SPEC §3, derived stale)."""
    return and_(
        entity.status == AssetStatus.active,
        entity.last_seen_at.is_not(None),
        entity.last_seen_at < cutoff,
    )


def _stale_cutoff(session: Session, query: AssetQuery) -> datetime | None:
    return None if query.stale is None else settings.stale_cutoff(session)


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
    match: list[ColumnElement[bool]] = []
    for term in query.q.lower().split():
        match.append(entity.search_text.contains(term, autoescape=True))
    for name in ENUM_FILTERS:
        value = getattr(query, name)
        if value is not None:
            match.append(getattr(entity, name) == value)
    if query.owner:
        match.append(entity.owner == query.owner)
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
    return scope, match


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


def list_assets(session: Session, query: AssetQuery, *, with_total: bool = True) -> AssetPage:
    """One page of assets in a stable order, with cursors to the next and previous pages."""
    sort_expr = SORTS[query.sort_key]
    stale_cutoff = _stale_cutoff(session, query)
    scope, match = _conditions(query, Asset, stale_cutoff)
    base = select(Asset).where(*scope, *match)
    backwards = query.before is not None
    descending = query.descending != backwards
    cursor = query.before or query.after
    position = decode_cursor(cursor, query.sort_key) if cursor else None
    if query.q.split() and query.sort_key in PROBED_SORTS:
        stmt = _probed_page(query, scope, match, stale_cutoff, position, descending)
    else:
        stmt = base
        if position is not None:
            stmt = stmt.where(_past(sort_expr, Asset.id, position, descending))
        stmt = stmt.order_by(*_order(sort_expr, Asset.id, descending)).limit(query.limit + 1)
    # search_text is only for filtering: do not carry it into every row
    rows = list(session.scalars(stmt.options(defer(Asset.search_text))))
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    if backwards:
        rows.reverse()

    def cursor_of(asset: Asset) -> str:
        return encode_cursor(query.sort_key, sort_value(asset, query.sort_key), asset.id)

    has_next = more if not backwards else True
    has_prev = more if backwards else cursor is not None
    next_cursor = cursor_of(rows[-1]) if rows and has_next else None
    prev_cursor = cursor_of(rows[0]) if rows and has_prev else None
    total, capped = count(session, base) if with_total else (0, False)
    return AssetPage(rows, total, capped, next_cursor, prev_cursor, query)


def _probed_page(
    query: AssetQuery,
    scope: list[ColumnElement[bool]],
    match: list[ColumnElement[bool]],
    stale_cutoff: datetime | None,
    position: tuple[Any, uuid.UUID] | None,
    descending: bool,
) -> Select[tuple[Asset]]:
    """A searched page, in one statement, without PostgreSQL's "walk the sort index" trap.

    Left to itself, the planner answers `WHERE search_text LIKE '%term%' ORDER BY name LIMIT 51`
    by walking the name index until 51 rows match. That is fast when matches are dense and
    spread out, and very slow when they are rare or clustered in the sort order (a term that
    is part of many names starting with "o" walks every name from "a" on: 15 ms at 100,000
    assets, 220 ms at 1,000,000). So the statement does two bounded things instead:

    1. probe: look only at the first PROBE_ROWS rows in sort order (a short index walk); if at
       least limit+1 of them match, they are the page;
    2. otherwise: collect every matching row with the trigram index (a MATERIALIZED CTE, so the
       planner cannot turn it back into an index walk) and sort those; the CTE is only read
       (and so only computed) when the probe came up short.

    The rows are exactly those of the plain `ORDER BY ... LIMIT` query (`make bench` checks).
    Still slow: a term common overall but absent from the first PROBE_ROWS rows, e.g. "mysql"
    when names read "<app>-<engine>-<env>": at 1,000,000 assets 178,000 matches are collected
    (~0.7 s on the bench machine). Sizing a second probe from the count would fix that case.
    """
    key = query.sort_key
    n = query.limit + 1
    sort_expr = SORTS[key]
    in_scope = select(Asset).where(*scope)
    if position is not None:
        in_scope = in_scope.where(_past(sort_expr, Asset.id, position, descending))
    window = (
        in_scope.order_by(*_order(sort_expr, Asset.id, descending))
        .limit(PROBE_ROWS)
        .subquery("probe_window")
    )
    windowed = aliased(Asset, window)
    _, windowed_match = _conditions(query, windowed, stale_cutoff)
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


def count(session: Session, stmt: Select[tuple[Asset]]) -> tuple[int, bool]:
    """Exact count up to COUNT_CAP; past that the page says "more than COUNT_CAP"."""
    n = session.scalar(select(_capped_count(stmt))) or 0
    return min(n, COUNT_CAP), n > COUNT_CAP


def _capped_count(stmt: Select[tuple[Asset]]) -> Any:
    """How many rows `stmt` has, counting no further than COUNT_CAP + 1 (a scalar subquery)."""
    # a constant, not the id: lets PostgreSQL count from any index that covers the filters
    rows = stmt.with_only_columns(literal_column("1"), maintain_column_froms=True)
    capped = rows.order_by(None).limit(COUNT_CAP + 1).subquery()
    return select(func.count()).select_from(capped).scalar_subquery()
