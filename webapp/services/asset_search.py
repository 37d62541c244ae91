"""The inventory list: filters, search, sorting and keyset pagination (never OFFSET)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, or_, select, tuple_
from sqlalchemy.orm import Session

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
from webapp.models.base import utcnow
from webapp.services import settings
from webapp.services.errors import ValidationFailed

COUNT_CAP = 10_000
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
        if key != sort_key:
            raise ValueError
        if sort_key in DATETIME_SORTS:
            value = datetime.fromisoformat(value)
        return value, uuid.UUID(row_id)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise ValidationFailed({"cursor": "This page link is not valid; start from the first page."}) from None


def filtered(session: Session, query: AssetQuery) -> Select[tuple[Asset]]:
    """The WHERE part of the list, shared by the page, the count and exports."""
    stmt = select(Asset)
    if query.deleted:
        stmt = stmt.where(Asset.deleted_at.is_not(None))
    elif not query.include_deleted:
        stmt = stmt.where(Asset.deleted_at.is_(None))
    for term in query.q.lower().split():
        stmt = stmt.where(Asset.search_text.contains(term, autoescape=True))
    for name in ENUM_FILTERS:
        value = getattr(query, name)
        if value is not None:
            stmt = stmt.where(getattr(Asset, name) == value)
    if query.owner:
        stmt = stmt.where(Asset.owner == query.owner)
    if query.tag:
        stmt = stmt.where(
            exists()
            .where(asset_tags.c.asset_id == Asset.id)
            .where(asset_tags.c.tag_id == Tag.id)
            .where(Tag.name == query.tag)
        )
    if query.stale is not None:
        cutoff = utcnow() - timedelta(days=int(settings.get(session, "stale_after_days")))
        is_stale = and_(
            Asset.status == AssetStatus.active,
            Asset.last_seen_at.is_not(None),
            Asset.last_seen_at < cutoff,
        )
        stmt = stmt.where(is_stale if query.stale else ~is_stale)
    return stmt


def sort_value(asset: Asset, sort_key: str) -> Any:
    """The value of the sort expression for one row, as the database computes it."""
    if sort_key == "criticality":
        return CRITICALITY_ORDER.get(asset.criticality.value if asset.criticality else "", 0)
    value = getattr(asset, sort_key)
    if sort_key in ("owner", "host"):
        return value or ""
    return value.value if hasattr(value, "value") else value


def list_assets(session: Session, query: AssetQuery, *, with_total: bool = True) -> AssetPage:
    """One page of assets in a stable order, with cursors to the next and previous pages."""
    sort_expr = SORTS[query.sort_key]
    base = filtered(session, query)
    backwards = query.before is not None
    descending = query.descending != backwards
    stmt = base
    cursor = query.before or query.after
    if cursor:
        value, row_id = decode_cursor(cursor, query.sort_key)
        pair = tuple_(sort_expr, Asset.id)
        stmt = stmt.where(pair < (value, row_id) if descending else pair > (value, row_id))
    order = [sort_expr.desc(), Asset.id.desc()] if descending else [sort_expr.asc(), Asset.id.asc()]
    rows = list(session.scalars(stmt.order_by(*order).limit(query.limit + 1)))
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


def count(session: Session, stmt: Select[tuple[Asset]]) -> tuple[int, bool]:
    """Exact count up to COUNT_CAP; past that the page says "10,000+" instead of counting all."""
    capped = stmt.with_only_columns(Asset.id).order_by(None).limit(COUNT_CAP + 1).subquery()
    n = session.scalar(select(func.count()).select_from(capped)) or 0
    return min(n, COUNT_CAP), n > COUNT_CAP
