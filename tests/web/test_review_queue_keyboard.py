"""The review queue, faster (SPEC §5 `/conflicts`, issue 17): bulk resolve of selected items as
one change set (a confirmation for more than one item, `Undo` right after), `Next` on an item
that stays within the list's filter, each row's differing values, the keyboard help, and the
role checks. The keyboard itself is driven in tests/e2e/test_review_keyboard_journey.py."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.factories import make_asset
from tests.review_factories import duplicate_assets, field_conflict, make_run, possible_duplicate
from tests.web.pages import parse
from tests.web.test_query_count import (  # noqa: F401
    CONFLICTS_BY_IMPORT_QUERIES,
    CONFLICTS_QUERIES,
    count_statements,
)
from webapp.models import AuditEvent, ChangeSet, ChangeSetKind, Conflict, ConflictStatus

INCOMING = {"name": "orders-db", "engine": "postgresql", "host": "db-new.example.com",
            "port": 5432, "owner": "team-b@example.com", "environment": "staging"}


@pytest.fixture
def queue(session):  # type: ignore[no-untyped-def]
    """Four open items, newest first: a field conflict (csv:2), two assets (40%), a record
    (csv:1, 80%), and an older record (csv:3, 80%)."""
    run = make_run(session, source="cmdb")
    orders = make_asset(session, name="orders-db", host="db1.example.com", owner=None,
                        environment="production")
    copy = make_asset(session, name="orders-db-copy", host="db9.example.com")
    older = possible_duplicate(session, orders, {**INCOMING, "host": "db7.example.com"}, run=run,
                               record_key="csv:3", age=timedelta(days=2))
    record = possible_duplicate(session, orders, INCOMING, run=run, record_key="csv:1",
                                age=timedelta(hours=3))
    pair = duplicate_assets(session, orders, copy, confidence=0.4, age=timedelta(minutes=30))
    fields = field_conflict(session, orders, {"environment": ["production", "staging"]}, run=run,
                            record_key="csv:2", age=timedelta(seconds=5))
    return {"run": run, "orders": orders, "copy": copy, "older": older, "record": record,
            "pair": pair, "fields": fields}


def statuses(session, *items) -> list[ConflictStatus]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return [session.get(Conflict, c.id).status for c in items]


def ids(*items) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(c.id) for c in items]


# --- bulk resolve: confirmation, one change set, undo ----------------------------------------

def test_more_than_one_item_asks_for_a_confirmation_first(client, login_as, queue, session):
    login_as("reviewer")
    chosen = (queue["record"], queue["pair"], queue["fields"])
    response = client.post("/conflicts/bulk?kind=&min_confidence=10",
                           data={"ids": ids(*chosen), "action": "dismiss"})
    assert response.status_code == 200
    page = parse(response.data)
    assert page.find("h1").text == "Dismiss 3 items?"
    assert "You can Undo this right after" in page.by_id("confirm-bulk").text
    items = [li.text for li in page.find("ul", class_="confirm-items").find_all("li")]
    assert len(items) == 3 and any("csv:1" in t and "orders-db" in t for t in items)
    form = page.by_id("confirm-bulk").find("form")
    assert form.get("action") == "/conflicts/bulk?min_confidence=10"  # the queue's filter rides on
    assert sorted(i.get("value") for i in form.find_all("input", name="ids")) == sorted(ids(*chosen))
    assert form.find("input", name="confirmed").get("value") == "yes"
    assert form.find("button").text == "Dismiss 3 items"
    assert statuses(session, *chosen) == [ConflictStatus.open] * 3  # nothing happened yet


def test_a_merge_says_in_its_confirmation_that_undo_does_not_reverse_it(client, login_as, queue):
    login_as("reviewer")
    response = client.post("/conflicts/bulk", data={"ids": ids(queue["record"], queue["older"]),
                                                    "action": "merge"})
    assert response.status_code == 200
    assert "A merge cannot be undone from the queue" in parse(response.data).by_id("confirm-bulk").text


def test_bulk_dismiss_is_one_change_set_and_undo_reopens_the_items(client, login_as, queue, session):
    reviewer = login_as("reviewer")
    chosen = (queue["record"], queue["pair"], queue["fields"])
    response = client.post("/conflicts/bulk?kind=", data={"ids": ids(*chosen), "action": "dismiss",
                                                          "confirmed": "yes"})
    assert response.status_code == 303 and response.headers["Location"] == "/conflicts"
    assert statuses(session, *chosen) == [ConflictStatus.dismissed] * 3
    # one change set, every resolve event carrying its id, in the reviewer's name
    change_set = session.scalars(select(ChangeSet).where(ChangeSet.kind == ChangeSetKind.review)).one()
    assert (change_set.changed, change_set.refused, change_set.actor_id) == (3, 0, reviewer.id)
    events = session.scalars(select(AuditEvent).where(AuditEvent.change_set_id == change_set.id)).all()
    assert sorted(e.entity_id for e in events) == sorted(ids(*chosen))
    assert {(e.action.value, e.entity_type) for e in events} == {("resolve", "conflict")}

    page = parse(client.get("/conflicts").data)
    flash = page.by_id("undo-flash")
    assert "Resolved 3 items (dismissed)." in flash.text
    undo = flash.find("form")
    assert undo.get("action") == f"/conflicts/undo/{change_set.id}"
    assert undo.find("button").text == "Undo"
    assert [r.find("td", class_="mono").text for r in page.by_id("queue").find("tbody").find_all("tr")] \
        == ["csv:3"]
    # shown once, right after the resolution
    assert parse(client.get("/conflicts").data).by_id("undo-flash") is None

    response = client.post(undo.get("action"))
    assert response.status_code == 303
    assert statuses(session, *chosen) == [ConflictStatus.open] * 3
    session.expire_all()
    assert all(session.get(Conflict, c.id).resolution is None for c in chosen)
    undone = session.get(ChangeSet, change_set.id).undone_by
    assert undone is not None
    reopened = session.scalars(select(AuditEvent).where(AuditEvent.change_set_id == undone)).all()
    assert sorted(e.entity_id for e in reopened) == sorted(ids(*chosen))
    assert {e.action.value for e in reopened} == {"undo"}
    after = parse(client.get("/conflicts").data)
    assert "Undone: 3 items are open again." in after.by_id("flashes").text
    assert len(after.by_id("queue").find("tbody").find_all("tr")) == 4
    # undone once
    assert client.post(f"/conflicts/undo/{change_set.id}").status_code == 409


def test_undo_of_a_bulk_merge_is_honest_about_what_it_leaves(client, login_as, queue, session):
    login_as("admin")
    chosen = (queue["record"], queue["older"])
    client.post("/conflicts/bulk", data={"ids": ids(*chosen), "action": "merge", "confirmed": "yes"})
    assert statuses(session, *chosen) == [ConflictStatus.merged] * 2
    flash = parse(client.get("/conflicts").data).by_id("undo-flash")
    assert "Resolved 2 items (merged)." in flash.text
    assert flash.find("form") is None  # nothing Undo could put back
    assert "not undone here" in flash.text
    change_set = session.scalars(select(ChangeSet).where(ChangeSet.kind == ChangeSetKind.review)).one()
    # the merge's asset change carries the change set too
    touched = session.scalars(select(AuditEvent.entity_type).where(
        AuditEvent.change_set_id == change_set.id)).all()
    assert sorted(touched) == ["asset", "conflict", "conflict"]
    # an Undo anyway (the change set's page offers it) reopens nothing and says why
    client.post(f"/conflicts/undo/{change_set.id}")
    assert statuses(session, *chosen) == [ConflictStatus.merged] * 2
    flashes = parse(client.get("/conflicts").data).by_id("flashes").text
    assert "Undone: 0 items are open again." in flashes
    assert "2 items were left as they were" in flashes and "revert it from the asset's History" in flashes


def test_one_refused_item_does_not_stop_the_others(client, login_as, queue, session):
    login_as("reviewer")
    response = client.post("/conflicts/bulk", data={
        "ids": ids(queue["record"], queue["pair"]) + [str(uuid.uuid4())], "action": "create",
        "confirmed": "yes"})
    assert response.status_code == 303
    assert statuses(session, queue["record"], queue["pair"]) == [ConflictStatus.created, ConflictStatus.open]
    flashes = parse(client.get("/conflicts").data).by_id("flashes").text
    assert "2 items were not resolved" in flashes and "No such review item." in flashes


@pytest.mark.parametrize("role", ["analyst", "viewer"])
def test_only_a_reviewer_or_an_admin_resolves_or_undoes(client, login_as, queue, session, role):
    login_as("reviewer")
    client.post("/conflicts/bulk", data={"ids": ids(queue["record"], queue["pair"]), "action": "dismiss",
                                         "confirmed": "yes"})
    change_set = session.scalars(select(ChangeSet).where(ChangeSet.kind == ChangeSetKind.review)).one()
    client.post("/logout")
    login_as(role)
    assert client.post("/conflicts/bulk", data={"ids": ids(queue["fields"]), "action": "dismiss",
                                                "confirmed": "yes"}).status_code == 403
    assert client.post(f"/conflicts/undo/{change_set.id}").status_code == 403
    # nor through the change set's own page (an analyst may undo bulk edits, not resolutions)
    assert client.post(f"/change-sets/{change_set.id}/undo").status_code == 403
    assert statuses(session, queue["fields"], queue["record"]) == [ConflictStatus.open, ConflictStatus.dismissed]
    page = parse(client.get("/conflicts").data)
    assert page.find("input", attrs={"name": "ids"}) is None


@pytest.mark.parametrize(("data", "message"), [
    ({"action": "dismiss"}, "Select at least one item."),
    ({"ids": ["", " "], "action": "dismiss"}, "Select at least one item."),
    ({"ids": ["not-an-item"], "action": "dismiss"}, "not a review item"),
    ({"ids": ["00000000-0000-0000-0000-000000000001"], "action": "approve"}, "Choose merge, create or dismiss."),
    ({"ids": ["00000000-0000-0000-0000-000000000001"]}, "Choose merge, create or dismiss."),
])
def test_an_empty_or_bad_selection_is_422(client, login_as, queue, session, data, message):
    login_as("reviewer")
    response = client.post("/conflicts/bulk?kind=field_conflict", data=data)
    assert response.status_code == 422
    assert message in parse(response.data).by_id("queue").find(role="alert").text
    assert session.scalar(select(ChangeSet.id).where(ChangeSet.kind == ChangeSetKind.review)) is None


def test_a_nul_in_the_selection_is_422(client, login_as, queue, session):
    login_as("reviewer")
    response = client.post("/conflicts/bulk", data={"ids": ["\x00"], "action": "dismiss", "confirmed": "yes"})
    assert response.status_code == 422
    assert session.scalar(select(ChangeSet.id).where(ChangeSet.kind == ChangeSetKind.review)) is None


def test_too_many_items_is_422(client, login_as, queue):
    login_as("reviewer")
    response = client.post("/conflicts/bulk", data={"ids": [str(uuid.uuid4()) for _ in range(201)],
                                                    "action": "dismiss", "confirmed": "yes"})
    assert response.status_code == 422
    assert "at most 200" in parse(response.data).by_id("queue").find(role="alert").text


def test_undo_of_something_else_is_refused(client, login_as, queue):
    login_as("reviewer")
    assert client.post(f"/conflicts/undo/{uuid.uuid4()}").status_code == 404
    assert client.post("/conflicts/undo/junk").status_code == 404


# --- Next keeps the filter ------------------------------------------------------------------

def test_next_on_an_item_stays_within_the_list_it_came_from(client, login_as, queue):
    login_as("reviewer")
    queue_page = parse(client.get("/conflicts?kind=possible_duplicate&min_confidence=50").data)
    links = [a.get("href") for a in queue_page.by_id("queue").find_all("a", data_row_link="")]
    assert links == [f"/conflicts/{queue['record'].id}?kind=possible_duplicate&min_confidence=50",
                     f"/conflicts/{queue['older'].id}?kind=possible_duplicate&min_confidence=50"]
    # csv:1's Previous skips the two-asset item (40%), which the filter leaves out
    item = parse(client.get(links[0]).data)
    nav = item.find("nav", aria_label="Open items")
    assert nav.find("a", rel="next").get("href") == links[1]
    assert nav.find("a", rel="prev") is None  # the field conflict is newer, but not in the list
    assert item.find("p", class_="crumbs").find("a").get("href") == \
        "/conflicts?kind=possible_duplicate&min_confidence=50"
    assert item.by_id("resolve").get("action") == \
        f"/conflicts/{queue['record'].id}/resolve?kind=possible_duplicate&min_confidence=50"
    # without a filter: every open item, newest first
    nav = parse(client.get(f"/conflicts/{queue['record'].id}").data).find("nav", aria_label="Open items")
    assert nav.find("a", rel="prev").get("href") == f"/conflicts/{queue['pair'].id}"


def test_resolving_goes_on_to_the_next_item_of_the_same_list(client, login_as, queue):
    login_as("reviewer")
    response = client.post(f"/conflicts/{queue['record'].id}/resolve?kind=possible_duplicate&min_confidence=50",
                           data={"action": "dismiss"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/conflicts/{queue['older'].id}?kind=possible_duplicate&min_confidence=50"
    response = client.post(f"/conflicts/{queue['older'].id}/resolve?kind=possible_duplicate&min_confidence=50",
                           data={"action": "dismiss"})
    assert response.headers["Location"] == "/conflicts?kind=possible_duplicate&min_confidence=50"  # none left there


def test_a_bad_filter_on_an_item_is_a_clear_422(client, login_as, queue):
    login_as("viewer")
    response = client.get(f"/conflicts/{queue['record'].id}?kind=nonsense")
    assert response.status_code == 422
    assert "Choose possible_duplicate or field_conflict." in response.get_data(as_text=True)


# --- the rows show what differs -------------------------------------------------------------

def test_each_row_shows_its_differing_values(client, login_as, queue):
    login_as("viewer")
    page = parse(client.get("/conflicts").data)
    rows = {r.find("td", class_="mono").text: r for r in page.by_id("queue").find("tbody").find_all("tr")}
    diffs = {key: [li.text for li in row.find("td", class_="diffs").find_all("li")]
             for key, row in rows.items()}
    assert diffs["csv:1"] == ["Host : db1.example.com → db-new.example.com",
                              "Environment : production → staging", "Owner : — → team-b@example.com"]
    assert diffs["csv:2"] == ["Environment : production → staging"]
    assert "Host : db1.example.com → db9.example.com" in diffs["—"]  # the two assets
    assert "Name : orders-db → orders-db-copy" in diffs["—"]


def test_the_page_documents_its_keyboard_shortcuts(client, login_as, queue):
    login_as("reviewer")
    help_ = parse(client.get("/conflicts").data).by_id("shortcuts")
    text = help_.text
    for shortcut in ("j / k", "x select or unselect it", "Shift + x select from the last selected",
                     "m Merge selected", "n Create new for selected", "d Dismiss selected",
                     "? show or hide this help", "Not while typing in a field"):
        assert shortcut in text, shortcut
    buttons = {b.get("data-key"): b.text for b in parse(client.get("/conflicts").data).find_all("button")
               if b.get("data-key")}
    assert buttons == {"m": "Merge selected", "n": "Create new for selected", "d": "Dismiss selected"}


# --- no query per row -----------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 40])
def test_the_queue_with_differences_reads_a_constant_number_of_queries(
    session, login_as, count_statements, n  # noqa: F811
):
    run = make_run(session)
    for i in range(n):
        asset = make_asset(session, name=f"db-{i}", host=f"h{i}.example.com", tags=["pci", f"t{i}"])
        other = make_asset(session, name=f"db-{i}-copy", host=f"c{i}.example.com")
        possible_duplicate(session, asset, {**INCOMING, "tags": ["pci"]}, run=run, record_key=f"csv:{i}")
        duplicate_assets(session, asset, other)
        field_conflict(session, asset, {"owner": ["a@example.com", "b@example.com"]}, run=run)
    login_as("reviewer")
    assert count_statements("/conflicts") == CONFLICTS_QUERIES
    assert count_statements(f"/conflicts?import={run.number}&kind=possible_duplicate") \
        == CONFLICTS_BY_IMPORT_QUERIES

