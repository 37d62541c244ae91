"""The inventory list's service: query parsing, keyset cursors and paging, called directly."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from tests.factories import ACTOR, make_asset
from webapp.models import Asset, Engine
from webapp.services import asset_search as search
from webapp.services import assets
from webapp.services.asset_search import AssetQuery, decode_cursor, encode_cursor, parse_query
from webapp.services.errors import ValidationFailed

CURSOR_ERROR = {"cursor": "This page link is not valid; start from the first page."}


def _parse_errors(args: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_query(args, **kwargs)
    assert caught.value.message == "Some filters are not valid."
    return caught.value.errors


def _forge(payload: Any) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --- parse_query -------------------------------------------------------------------------------

def test_no_arguments_is_the_default_query():
    query = parse_query({})
    assert query == AssetQuery()
    assert (query.sort, query.limit, query.q, query.stale, query.include_deleted) == (
        "name", 50, "", None, False)


def test_every_filter_is_read():
    query = parse_query({
        "q": "  orders db  ", "engine": "mysql", "environment": "staging", "status": "inactive",
        "criticality": "high", "data_classification": "restricted", "owner": "  dba@example.com ",
        "tag": " PCI ", "stale": "true", "include_deleted": "1", "sort": "-updated_at",
        "limit": "25", "after": "AFTER", "before": "BEFORE",
    })
    assert query.q == "orders db"
    assert (query.engine, query.environment, query.status, query.criticality,
            query.data_classification) == (["mysql"], ["staging"], ["inactive"], ["high"],
                                           ["restricted"])
    assert query.owner == "dba@example.com"
    assert query.tag == "pci"
    assert query.stale is True and query.include_deleted is True
    assert query.sort == "-updated_at" and query.sort_key == "updated_at" and query.descending
    assert query.limit == 25
    assert (query.after, query.before) == ("AFTER", "BEFORE")


def test_empty_values_mean_no_filter():
    query = parse_query({"engine": "", "owner": "   ", "tag": "", "stale": "", "sort": "",
                         "limit": "", "after": "", "before": ""})
    assert query == AssetQuery()


def test_cursor_is_an_alias_of_after_and_q_is_capped():
    query = parse_query({"cursor": "C", "q": "x" * 500})
    assert query.after == "C"
    assert query.q == "x" * 200


@pytest.mark.parametrize(("value", "expected"), [
    ("true", True), ("1", True), ("yes", True), (True, True),
    ("false", False), ("0", False), ("no", False), (False, False),
])
def test_stale_accepts_true_and_false_spellings(value, expected):
    assert parse_query({"stale": value}).stale is expected


@pytest.mark.parametrize("value", ["true", "1", "yes", True])
def test_include_deleted_spellings(value):
    assert parse_query({"include_deleted": value}).include_deleted is True
    assert parse_query({"include_deleted": "no"}).include_deleted is False


@pytest.mark.parametrize(("field", "value"), [
    ("engine", "postgres"),
    ("environment", "prod"),
    ("status", "gone"),
    ("criticality", "urgent"),
    ("data_classification", "secret"),
])
def test_a_bad_enum_filter_is_named(field, value):
    errors = _parse_errors({field: value})
    assert list(errors) == [field]
    assert errors[field].startswith("Choose one of: ")
    enum_cls = search.ENUM_FILTERS[field]
    assert all(name in errors[field] for name in enum_cls.__members__)


def test_a_bad_stale_value_is_named():
    assert _parse_errors({"stale": "maybe"}) == {"stale": "Use true or false."}


@pytest.mark.parametrize("sort", ["colour", "name-", "-", "search_text", "Name"])
def test_an_unknown_sort_is_named(sort):
    errors = _parse_errors({"sort": sort})
    assert list(errors) == ["sort"]
    assert errors["sort"].startswith("Sort by one of: name, engine,")


@pytest.mark.parametrize("sort", list(search.SORTS) + [f"-{s}" for s in search.SORTS])
def test_every_sort_and_its_descending_form_is_accepted(sort):
    query = parse_query({"sort": sort})
    assert query.sort == sort
    assert query.descending == sort.startswith("-")


@pytest.mark.parametrize("limit", ["0", "-1", "501", "abc", "1.5", "1e3"])
def test_a_limit_out_of_bounds_is_named(limit):
    assert _parse_errors({"limit": limit}) == {"limit": "Enter a number from 1 to 500."}


def test_limit_bounds_are_inclusive_and_follow_max_limit():
    assert parse_query({"limit": "1"}).limit == 1
    assert parse_query({"limit": "500"}).limit == 500
    assert parse_query({"limit": 7}).limit == 7
    assert parse_query({"limit": "100"}, max_limit=100).limit == 100
    assert _parse_errors({"limit": "101"}, max_limit=100) == {
        "limit": "Enter a number from 1 to 100."}


def test_every_bad_filter_is_reported_at_once():
    errors = _parse_errors({"engine": "x", "stale": "x", "sort": "x", "limit": "x"})
    assert set(errors) == {"engine", "stale", "sort", "limit"}


# --- cursors -----------------------------------------------------------------------------------

def test_a_text_cursor_round_trips():
    row_id = uuid.uuid4()
    cursor = encode_cursor("name", "orders-db", row_id)
    assert "=" not in cursor
    assert decode_cursor(cursor, "name") == ("orders-db", row_id)


def test_a_datetime_cursor_round_trips_in_utc():
    row_id = uuid.uuid4()
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    value, decoded_id = decode_cursor(encode_cursor("updated_at", when, row_id), "updated_at")
    assert value == when and value.utcoffset() == timedelta(0) and decoded_id == row_id
    # another offset is the same instant, returned in UTC
    cursor = _forge(["created_at", "2026-01-02T05:04:05+02:00", str(row_id)])
    value, _ = decode_cursor(cursor, "created_at")
    assert value == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert value.tzinfo is UTC


def test_a_criticality_cursor_round_trips():
    row_id = uuid.uuid4()
    for rank in range(0, len(search.CRITICALITY_ORDER) + 1):
        assert decode_cursor(encode_cursor("criticality", rank, row_id), "criticality") == (
            rank, row_id)


@pytest.mark.parametrize(("sort_key", "payload"), [
    ("name", ["host", "a", "{id}"]),  # a cursor of another sort
    ("name", ["name", 5, "{id}"]),  # a number where text belongs
    ("name", ["name", None, "{id}"]),
    ("name", ["name", ["a"], "{id}"]),
    ("owner", ["owner", "a\x00b", "{id}"]),  # NUL: PostgreSQL would refuse it
    ("host", ["host", "a\ud800", "{id}"]),  # a lone surrogate
    ("name", ["name", "a", "not-a-uuid"]),
    ("name", ["name", "a", 12345]),
    ("name", ["name", "a"]),  # too short
    ("name", ["name", "a", "{id}", "extra"]),
    ("name", {"name": "a"}),
    ("name", 5),
    ("criticality", ["criticality", "high", "{id}"]),  # text where a rank belongs
    ("criticality", ["criticality", True, "{id}"]),
    ("criticality", ["criticality", 1.0, "{id}"]),
    ("criticality", ["criticality", 5, "{id}"]),
    ("criticality", ["criticality", -1, "{id}"]),
    ("criticality", ["criticality", 10**30, "{id}"]),  # would overflow the driver
    ("updated_at", ["updated_at", "yesterday", "{id}"]),
    ("updated_at", ["updated_at", "2026-01-01T00:00:00", "{id}"]),  # naive
    ("updated_at", ["updated_at", 1700000000, "{id}"]),
    ("updated_at", ["updated_at", "0001-01-01T00:00:00+01:00", "{id}"]),  # before year 1 in UTC
    ("created_at", ["created_at", "9999-12-31T23:59:59-01:00", "{id}"]),  # after 9999 in UTC
])
def test_a_forged_cursor_is_refused(sort_key, payload):
    row_id = str(uuid.uuid4())
    if isinstance(payload, list):
        payload = [row_id if v == "{id}" else v for v in payload]
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(_forge(payload), sort_key)
    assert caught.value.errors == CURSOR_ERROR


@pytest.mark.parametrize("cursor", ["", "!!!!", "a", "abc$", "bm90IGpzb24",
                                    _forge(b"\xff\xfe\x00"), _forge(b"[1,2")])
def test_a_garbage_cursor_is_refused(cursor):
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor, "name")
    assert caught.value.errors == CURSOR_ERROR


def test_a_deeply_nested_cursor_is_refused_as_invalid():
    cursor = _forge(b"[" * 1_000)
    assert len(cursor) < 2_000  # fits in a URL
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor, "name")
    assert caught.value.errors == CURSOR_ERROR


# --- list_assets -------------------------------------------------------------------------------

# letters and digits only, so every collation orders them as Python does
INVENTORY: list[dict[str, Any]] = [
    {"name": "alpha", "engine": "mysql", "environment": "production", "status": "active",
     "criticality": "high", "owner": "ops", "host": "hostb", "tags": ["pci"]},
    {"name": "bravo", "engine": "postgresql", "environment": "staging", "status": "inactive",
     "criticality": "low", "owner": "dba", "host": "hosta"},
    {"name": "charlie", "engine": "mysql", "environment": "production", "status": "active",
     "owner": None, "host": None, "tags": ["pci", "gold"]},
    {"name": "delta", "engine": "redis", "environment": "development", "status": "deprecated",
     "criticality": "critical", "owner": "ops", "host": "hostc"},
    {"name": "echo", "engine": "postgresql", "environment": "production", "status": "active",
     "criticality": "high", "owner": "dba", "host": "hosta", "database_name": "orders"},
    {"name": "foxtrot", "engine": "mongodb", "environment": "test", "status": "active",
     "criticality": "medium", "owner": None, "host": "hostd", "aliases": ["ordersreplica"]},
    {"name": "golf", "engine": "postgresql", "environment": "staging", "status": "active",
     "owner": "ops", "host": "hostb"},
    {"name": "echo", "engine": "mysql", "environment": "unknown", "status": "unknown",
     "criticality": "low", "owner": "dba", "host": None},  # the same name: the id decides
]


@pytest.fixture
def inventory(session) -> list[Asset]:  # type: ignore[no-untyped-def]
    made = [assets.create(session, ACTOR, dict(spec)) for spec in INVENTORY]
    # ties on the timestamps too: the id must decide between them
    same = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    for asset in made[2:5]:
        session.execute(update(Asset).where(Asset.id == asset.id)
                        .values(updated_at=same, created_at=same))
    session.commit()
    session.expire_all()
    rows = [session.get(Asset, a.id) for a in made]
    assert len({a.updated_at for a in rows[2:5]}) == 1 and len({a.updated_at for a in rows}) == 6
    return rows


def _expected(rows: list[Asset], sort: str) -> list[uuid.UUID]:
    key = sort.lstrip("-")
    ordered = sorted(rows, key=lambda a: (search.sort_value(a, key), a.id),
                     reverse=sort.startswith("-"))
    return [a.id for a in ordered]


def _walk(session, args: dict[str, Any], limit: int) -> tuple[list[uuid.UUID], list[list[uuid.UUID]]]:  # type: ignore[no-untyped-def]
    """Page forward to the end, then back to the start; return (forward ids, pages going back)."""
    forward: list[uuid.UUID] = []
    query = parse_query({**args, "limit": str(limit)})
    page = search.list_assets(session, query)
    assert page.prev_cursor is None
    last = page
    pages = 0
    while True:
        pages += 1
        assert len(page.items) <= limit
        forward += [a.id for a in page.items]
        last = page
        if page.next_cursor is None:
            break
        assert len(page.items) == limit
        page = search.list_assets(session, parse_query({**args, "limit": str(limit),
                                                        "after": page.next_cursor}))
        assert pages < 50, "the walk does not end"
    back: list[list[uuid.UUID]] = [[a.id for a in last.items]]
    cursor = last.prev_cursor
    while cursor is not None:
        page = search.list_assets(session, parse_query({**args, "limit": str(limit),
                                                        "before": cursor}))
        assert page.next_cursor is not None  # going back, there is always a way forward again
        back.insert(0, [a.id for a in page.items])
        cursor = page.prev_cursor
        assert len(back) < 50, "the walk back does not end"
    return forward, back


@pytest.mark.parametrize("sort", list(search.SORTS))
def test_paging_forward_and_back_sees_every_row_once_in_order(session, inventory, sort):
    for direction in (sort, f"-{sort}"):
        expected = _expected(inventory, direction)
        for limit in (3, 1):
            forward, back = _walk(session, {"sort": direction}, limit)
            assert forward == expected, (direction, limit)
            assert [i for p in back for i in p] == expected, (direction, limit)
            assert all(len(p) == limit for p in back[:-1]), (direction, limit)


def test_one_page_holding_everything_has_no_cursors(session, inventory):
    page = search.list_assets(session, parse_query({"limit": str(len(inventory))}))
    assert [a.id for a in page.items] == _expected(inventory, "name")
    assert page.next_cursor is None and page.prev_cursor is None
    assert page.total == len(inventory) and page.total_is_capped is False


def test_a_next_cursor_from_a_page_reached_backwards_continues_forward(session, inventory):
    order = _expected(inventory, "name")
    first = search.list_assets(session, parse_query({"limit": "3"}))
    second = search.list_assets(session, parse_query({"limit": "3", "after": first.next_cursor}))
    back = search.list_assets(session, parse_query({"limit": "3", "before": second.prev_cursor}))
    assert [a.id for a in back.items] == order[:3]
    again = search.list_assets(session, parse_query({"limit": "3", "after": back.next_cursor}))
    assert [a.id for a in again.items] == order[3:6]


def test_a_cursor_of_another_sort_is_refused_by_the_list(session, inventory):
    page = search.list_assets(session, parse_query({"limit": "2", "sort": "name"}))
    with pytest.raises(ValidationFailed) as caught:
        search.list_assets(session, parse_query({"limit": "2", "sort": "owner",
                                                 "after": page.next_cursor}))
    assert caught.value.errors == CURSOR_ERROR


def _names(page: search.AssetPage) -> list[str]:
    return [a.name for a in page.items]


@pytest.mark.parametrize("sort", ["name", "-updated_at", "owner"])
def test_search_terms_match_every_searched_field_and_page(session, inventory, sort):
    # "orders" is the first echo's database name and foxtrot's alias
    matching = [inventory[4], inventory[5]]
    assert (matching[0].database_name, matching[1].aliases) == ("orders", ["ordersreplica"])
    forward, back = _walk(session, {"q": "ORDERS", "sort": sort}, 1)
    assert forward == _expected(matching, sort)
    assert [i for p in back for i in p] == forward
    page = search.list_assets(session, parse_query({"q": "orders", "sort": sort}))
    assert page.total == 2


def test_every_search_term_must_match(session, inventory):
    page = search.list_assets(session, parse_query({"q": "hosta dba"}))
    assert _names(page) == ["bravo", "echo"]
    page = search.list_assets(session, parse_query({"q": "hosta pci"}))
    assert page.items == [] and page.total == 0
    # a tag is searched too, and LIKE wildcards are plain text
    assert _names(search.list_assets(session, parse_query({"q": "gold"}))) == ["charlie"]
    assert search.list_assets(session, parse_query({"q": "%"})).items == []
    assert search.list_assets(session, parse_query({"q": "_"})).items == []


def test_tag_owner_and_enum_filters(session, inventory):
    assert _names(search.list_assets(session, parse_query({"tag": "PCI"}))) == ["alpha", "charlie"]
    assert search.list_assets(session, parse_query({"tag": "nope"})).items == []
    owned = search.list_assets(session, parse_query({"owner": "dba"}))
    assert _names(owned) == ["bravo", "echo", "echo"] and owned.total == 3
    assert _names(search.list_assets(session, parse_query({"engine": "mysql", "criticality": "low"}))) == ["echo"]
    assert _names(search.list_assets(session, parse_query(
        {"environment": "production", "status": "active", "tag": "gold"}))) == ["charlie"]


def test_trashed_assets_show_only_when_asked_for(session, inventory):
    gone = inventory[0]
    assets.delete(session, ACTOR, gone.id)
    live = search.list_assets(session, parse_query({}))
    assert gone.id not in [a.id for a in live.items] and live.total == len(inventory) - 1
    everything = search.list_assets(session, parse_query({"include_deleted": "true"}))
    assert gone.id in [a.id for a in everything.items] and everything.total == len(inventory)
    trash = search.list_assets(session, AssetQuery(deleted=True))
    assert [a.id for a in trash.items] == [gone.id]


def test_the_stale_filter(session, inventory):
    by_name = {a.name: a for a in inventory}
    long_ago = datetime.now(UTC) - timedelta(days=400)
    recently = datetime.now(UTC) - timedelta(days=1)

    def seen(name: str, when: datetime, missed: datetime | None = None) -> None:
        session.execute(update(Asset).where(Asset.id == by_name[name].id)
                        .values(last_seen_at=when, missed_since=missed))

    seen("alpha", long_ago, long_ago)  # active and missed by covering scans for long: stale
    seen("bravo", long_ago, long_ago)  # missed for long, but inactive: not stale
    seen("golf", recently)  # seen recently: not stale
    seen("charlie", long_ago)  # not seen for long, but no covering scan missed it: not stale
    session.commit()  # the others were never seen by an import: not stale
    stale = search.list_assets(session, parse_query({"stale": "true"}))
    assert _names(stale) == ["alpha"] and stale.total == 1
    fresh = search.list_assets(session, parse_query({"stale": "false"}))
    assert "alpha" not in _names(fresh) and fresh.total == len(inventory) - 1
    # seen= (SPEC §6): the same stale, never seen by discovery, and the rest
    assert _names(search.list_assets(session, parse_query({"seen": "stale"}))) == ["alpha"]
    assert _names(search.list_assets(session, parse_query({"seen": "fresh"}))) == ["bravo", "charlie", "golf"]
    unverified = search.list_assets(session, parse_query({"seen": "unverified"}))
    assert set(_names(unverified)) == {a.name for a in inventory} - {"alpha", "bravo", "charlie", "golf"}


def test_the_total_is_capped(session, inventory, monkeypatch):
    monkeypatch.setattr(search, "COUNT_CAP", 5)
    page = search.list_assets(session, parse_query({"limit": "2"}))
    assert page.total == 5 and page.total_is_capped is True
    exact = search.list_assets(session, parse_query({"limit": "2", "owner": "dba"}))
    assert exact.total == 3 and exact.total_is_capped is False
    assert search.list_assets(session, parse_query({}), with_total=False).total == 0


# --- several values of one filter, owner by prefix, the estimate past the cap ----------------

def test_an_enum_filter_takes_several_values():
    from werkzeug.datastructures import MultiDict

    query = parse_query(MultiDict([("engine", "mysql"), ("engine", "postgresql"), ("engine", "mysql")]))
    assert query.engine == ["mysql", "postgresql"]  # repeats read once
    with pytest.raises(ValidationFailed) as caught:
        parse_query(MultiDict([("engine", "mysql"), ("engine", "nosuchdb")]))
    assert set(caught.value.errors) == {"engine"}


def test_several_engines_list_the_assets_of_any_of_them(session):
    from werkzeug.datastructures import MultiDict

    for name, engine in (("a", Engine.mysql), ("b", Engine.postgresql), ("c", Engine.redis)):
        make_asset(session, name=name, engine=engine)
    query = parse_query(MultiDict([("engine", "mysql"), ("engine", "postgresql")]))
    assert [a.name for a in search.list_assets(session, query).items] == ["a", "b"]


def test_the_owner_filter_is_a_prefix_in_any_case(session):
    make_asset(session, name="a", owner="DBA-team@example.com")
    make_asset(session, name="b", owner="dba@example.com")
    make_asset(session, name="c", owner="payments@example.com")
    make_asset(session, name="d", owner="50%_off@example.com")
    names = lambda owner: [a.name for a in search.list_assets(session, parse_query({"owner": owner})).items]  # noqa: E731
    assert names("dba") == ["a", "b"]
    assert names("DBA@") == ["b"]
    assert names("50%_") == ["d"] and names("5%") == []  # LIKE wildcards are text


def test_past_the_cap_the_page_estimates_and_counts_exactly_on_request(session, monkeypatch):
    monkeypatch.setattr(search, "COUNT_CAP", 3)
    for i in range(6):
        make_asset(session, name=f"db{i}")
    page = search.list_assets(session, parse_query({}))
    assert page.total_is_capped and page.total == 3
    if session.get_bind().dialect.name == "postgresql":
        assert page.estimate is not None and page.estimate >= 4
    else:
        assert page.estimate is None
    exact = search.list_assets(session, parse_query({"count": "exact"}))
    assert (exact.total, exact.total_is_capped, exact.estimate) == (6, False, None)


@pytest.mark.parametrize(("n", "said"), [(1_001, "1,000"), (1_250, "1,200"), (18_400, "18,000"),
                                         (1_234_567, "1.2 million"), (2_000_000, "2 million")])
def test_an_estimate_reads_as_people_say_it(n, said):
    from webapp.web.filters import about

    assert about(n) == said
