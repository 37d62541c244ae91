"""At bench scale, check that the list's fast paths answer exactly what the plain queries answer.

`asset_search` answers searched pages with a probe-then-collect statement and settles some
counts from bounds (see `_probed_page` and `_count`). Here every such page and count is compared
with the straightforward `WHERE ... ORDER BY ... LIMIT` query and the exact capped count.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import tuple_

from webapp.extensions import db
from webapp.models import Asset
from webapp.services import asset_search

PAGES_PER_QUERY = 3  # forward pages walked per query (then one page back)


def _reference_ids(session: Any, query: asset_search.AssetQuery) -> list[Any]:
    """The page's ids the plain way: filters, keyset, ORDER BY sort, id LIMIT limit+1."""
    sort_expr = asset_search.SORTS[query.sort_key]
    backwards = query.before is not None
    descending = query.descending != backwards
    stmt = asset_search.filtered(session, query)
    cursor = query.before or query.after
    if cursor:
        position = asset_search.decode_cursor(cursor, query.sort_key)
        pair = tuple_(sort_expr, Asset.id)
        stmt = stmt.where(pair < position if descending else pair > position)
    order = [sort_expr.desc(), Asset.id.desc()] if descending else [sort_expr, Asset.id]
    ids = list(
        session.scalars(stmt.with_only_columns(Asset.id).order_by(*order).limit(query.limit + 1))
    )
    ids = ids[: query.limit]
    if backwards:
        ids.reverse()
    return ids


def verify(app: Flask, terms: list[str], tags: list[str]) -> tuple[int, list[str]]:
    """(pages checked, mismatches): no mismatches when every page and count agrees."""
    problems: list[str] = []
    checked = 0
    args_list: list[dict[str, str]] = []
    for term in terms:
        for sort in ("name", "-name", "updated_at", "-updated_at"):
            args_list.append({"q": term, "sort": sort})
    for tag in tags:
        args_list.append({"tag": tag})
        args_list.append({"tag": tag, "q": "prod"})
    with app.app_context():
        session = db.session
        for args in args_list:
            query = asset_search.parse_query(args)
            seen: list[list[Any]] = []
            page = None
            for _ in range(PAGES_PER_QUERY):
                page = asset_search.list_assets(session, query)
                got = [a.id for a in page.items]
                want = _reference_ids(session, query)
                checked += 1
                if got != want:
                    problems.append(f"page {args} after={query.after}: rows differ")
                    break
                exact = asset_search.count(session, asset_search.filtered(session, query))
                if (page.total, page.total_is_capped) != exact:
                    problems.append(
                        f"count {args}: {(page.total, page.total_is_capped)} != {exact}"
                    )
                seen.append(got)
                if not page.next_cursor:
                    break
                query = asset_search.parse_query({**args, "after": page.next_cursor})
            if page is not None and len(seen) >= 2 and page.prev_cursor:
                # back from the last page reached must give the page before it
                back = asset_search.parse_query({**args, "before": page.prev_cursor})
                got = [a.id for a in asset_search.list_assets(session, back).items]
                checked += 1
                if got != _reference_ids(session, back) or got != seen[-2]:
                    problems.append(f"page {args} before={back.before}: backwards page differs")
        session.remove()
    return checked, problems
