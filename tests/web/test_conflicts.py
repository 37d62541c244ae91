"""The review queue as a reviewer uses it in the browser (SPEC §5 `/conflicts`): filter the
queue, open an item, compare current and incoming side by side, choose per field, resolve with
Merge / Create new / Dismiss (the next item loads in place with htmx, or after a redirect
without it), bulk-resolve selected items, and see the open count in the navigation."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from tests.factories import make_asset
from tests.review_factories import duplicate_assets, field_conflict, make_run, possible_duplicate
from tests.web.browser import HTMX, field_value
from tests.web.pages import in_app_layout, labelled_control, parse
from webapp.models import Asset, AuditEvent, Conflict, ConflictStatus
from webapp.services import conflicts
from webapp.services.actor import Actor

INCOMING = {"name": "orders-db", "engine": "postgresql", "host": "db-new.example.com",
            "port": 5432, "owner": "team-b@example.com", "environment": "staging"}
EMPTY_STATE = "No open items. Imports bring uncertain matches here."


@pytest.fixture
def world(session):  # type: ignore[no-untyped-def]
    """Three open items, newest first: a field conflict, two assets, a record (csv:1)."""
    run = make_run(session, source="cmdb")
    orders = make_asset(session, name="orders-db", host="db1.example.com", owner=None,
                        environment="production")
    copy = make_asset(session, name="orders-db-copy", host="db9.example.com")
    record = possible_duplicate(session, orders, INCOMING, run=run, record_key="csv:1",
                                confidence=0.82, reasons=["same database name", "name similarity 0.91",
                                                          "same port", "same engine"],
                                age=timedelta(hours=3, minutes=5))
    pair = duplicate_assets(session, orders, copy, confidence=0.64, age=timedelta(minutes=30))
    fields = field_conflict(session, orders, {"environment": ["production", "staging"]}, run=run,
                            record_key="csv:2", age=timedelta(seconds=5))
    return {"run": run, "orders": orders, "copy": copy, "record": record, "pair": pair,
            "fields": fields}


def status_of(session, conflict) -> ConflictStatus:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(Conflict, conflict.id).status


def audit_count(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(AuditEvent))


def queue_rows(html: str) -> list[dict[str, str]]:
    """The queue table as a person reads it: {column heading: cell text} per row."""
    block = parse(html).by_id("queue")
    assert block is not None
    table = block.find("table")
    if table is None:
        return []
    heads = [th.text for th in table.find("thead").find_all("th")]
    return [dict(zip(heads, (td.text for td in tr.find_all("td")), strict=True))
            for tr in table.find("tbody").find_all("tr")]


# --- the queue ------------------------------------------------------------------------------

def test_queue_page_lists_open_items_with_labelled_filters(client, login_as, world):
    login_as("reviewer")
    response = client.get("/conflicts")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and in_app_layout(html)
    page = parse(html)
    assert labelled_control(page, "Import").get("name") == "import"
    assert labelled_control(page, "Kind").tag == "select"
    assert labelled_control(page, "Minimum confidence").get("type") == "number"
    status = labelled_control(page, "Status")
    assert [o.get("value") for o in status.find_all("option") if o.get("selected") is not None] == ["open"]
    rows = queue_rows(html)
    assert [r["Kind"] for r in rows] == ["Field conflict", "Duplicate assets", "Possible duplicate"]
    assert rows[2] == {
        "Select": "Select possible duplicate csv:1", "Kind": "Possible duplicate",
        "Record key": "csv:1", "Candidate asset": "orders-db", "Confidence": "82%",
        "Differences": "Host : db1.example.com → db-new.example.com Environment : production → "
                       "staging Owner : — → team-b@example.com",
        "Reasons": "same database name; name similarity 0.91 +2 more",
        "Import": f"#{world['run'].number}", "Age": "3 h",
    }
    assert [r["Age"] for r in rows[:2]] == ["just now", "30 min"]
    assert rows[1]["Candidate asset"] == "orders-db and orders-db-copy"
    assert rows[1]["Record key"] == "—"
    # each row: a labelled checkbox, a link to the item, to its candidate and its import
    box = labelled_control(page, "Select possible duplicate csv:1")
    assert box.get("type") == "checkbox" and box.get("value") == str(world["record"].id)
    queue = page.by_id("queue")
    assert queue.find("a", href=f"/conflicts/{world['record'].id}") is not None
    assert queue.find("a", href=f"/assets/{world['orders'].id}") is not None
    assert queue.find("a", href=f"/imports/{world['run'].id}") is not None
    bulk = page.find("form", id="bulk")
    assert [b.text for b in bulk.find_all("button")] == [
        "Merge selected", "Create new for selected", "Dismiss selected"]
    # shortcuts are listed, their behaviour is a static script
    assert "Keyboard shortcuts" in page.by_id("shortcuts").text
    assert page.find("script", src="/static/js/conflicts.js") is not None
    assert not [s for s in page.find_all("script") if not s.get("src")]


def test_navigation_shows_the_review_queue_with_its_open_count(client, login_as, world, session):
    login_as("viewer")
    nav = parse(client.get("/assets").data).find("nav", aria_label="Main")
    link = nav.find("a", href="/conflicts")
    assert link is not None and link.text == "Review queue 3 open"
    conflicts.resolve(session, Actor.system(), world["fields"].id, "dismiss")
    assert parse(client.get("/assets").data).by_id("review-count").text == "2 open"


def test_dashboard_shows_the_open_count_and_links_the_queue(client, login_as, world):
    login_as("viewer")
    page = parse(client.get("/").data)
    panel = page.by_id("open-conflicts")
    assert panel is not None and panel.get("href") == "/conflicts"
    assert panel.text == "3 open conflicts in the review queue"


def test_empty_queue_says_where_items_come_from(client, login_as):
    login_as("viewer")
    html = client.get("/conflicts").get_data(as_text=True)
    assert EMPTY_STATE in parse(html).by_id("queue").text
    assert parse(html).find("form", id="bulk") is None


@pytest.mark.parametrize("query,expected", [
    ("kind=field_conflict", ["csv:2"]),
    ("min_confidence=80", ["csv:2", "csv:1"]),
    ("min_confidence=70%25&kind=possible_duplicate", ["csv:1"]),
    ("import={run}", ["csv:2", "csv:1"]),
    ("import=%23{run}", ["csv:2", "csv:1"]),
    ("status=dismissed", []),
])
def test_filters_narrow_the_queue_and_stay_in_the_url(client, login_as, world, query, expected):
    login_as("viewer")
    url = "/conflicts?" + query.format(run=world["run"].number)
    html = client.get(url).get_data(as_text=True)
    assert [r["Record key"] for r in queue_rows(html) if r["Record key"] != "—"] == expected
    if not expected:
        assert "No items match these filters." in html
    # the form shows the filters it applied
    args = parse_qs(urlsplit(url).query)
    assert field_value(html, "f-kind") == args.get("kind", [""])[0]
    assert field_value(html, "f-min-confidence") == args.get("min_confidence", [""])[0].rstrip("%")
    assert field_value(html, "f-import") == args.get("import", [""])[0]
    assert field_value(html, "f-status") == args.get("status", ["open"])[0]


def test_resolved_items_are_listed_with_their_status(client, login_as, world, session):
    conflicts.resolve(session, Actor.system(), world["record"].id, "dismiss")
    login_as("reviewer")
    html = client.get("/conflicts?status=any").get_data(as_text=True)
    row = [r for r in queue_rows(html) if r["Record key"] == "csv:1"][0]
    assert row["Kind"] == "Possible duplicate dismissed"
    box = parse(html).by_id(f"pick-{world['record'].id}")
    assert box.get("disabled") is not None


@pytest.mark.parametrize("query,field,message", [
    ("import=abc", "Import", "Enter an import number"),
    ("import=999", "Import", "There is no import #999."),
    ("kind=other", "Kind", "Choose possible_duplicate or field_conflict."),
    ("min_confidence=150", "Min confidence", "Enter a percentage from 0 to 100."),
    ("min_confidence=nan", "Min confidence", "Enter a percentage from 0 to 100."),
    ("status=closed", "Status", "Choose open, merged, created, dismissed or any."),
    ("after=bogus", "Cursor", "This page link is not valid"),
])
def test_bad_filters_are_422_with_a_message(client, login_as, world, query, field, message):
    login_as("viewer")
    response = client.get(f"/conflicts?{query}")
    assert response.status_code == 422
    alert = parse(response.data).by_id("queue").find(role="alert")
    assert alert is not None and message in alert.text and field in alert.text


def test_queue_pages_with_a_cursor_and_htmx_gets_the_block(client, login_as, session):
    run = make_run(session)
    orders = make_asset(session, name="orders-db")
    for i in range(1, 56):
        possible_duplicate(session, orders, INCOMING, run=run, record_key=f"csv:{i}")
    login_as("viewer")
    first = client.get("/conflicts").get_data(as_text=True)
    assert len(queue_rows(first)) == 50
    nxt = parse(first).by_id("queue").find("a", rel="next").get("href")
    second = client.get(nxt, headers=HTMX)
    html = second.get_data(as_text=True)
    assert second.status_code == 200 and "<html" not in html and 'id="queue"' in html
    assert [r["Record key"] for r in queue_rows(html)] == [f"csv:{i}" for i in range(5, 0, -1)]
    assert "HX-Request" in second.headers["Vary"]


def test_the_queue_is_a_page_in_the_list_of_pages(client, login_as):
    login_as("viewer")
    response = client.get("/conflicts", headers=HTMX)
    html = response.get_data(as_text=True)
    assert "<html" not in html and EMPTY_STATE in html


# --- one item -------------------------------------------------------------------------------

def test_detail_shows_current_and_incoming_side_by_side(client, login_as, world):
    login_as("reviewer")
    response = client.get(f"/conflicts/{world['record'].id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and in_app_layout(html)
    page = parse(html)
    head = page.find("div", class_="card conflict-head")
    lines = [p.text for p in head.find_all("p", class_="line")]
    assert lines[0].startswith("Kind: an incoming record may be the same database")
    assert lines[1] == "Confidence: 82%"
    assert [li.text for li in head.find_all("li")] == [
        "same database name", "name similarity 0.91", "same port", "same engine"]
    table = page.find("table", class_="data compare")
    assert [th.text.split(" ")[0] for th in table.find("thead").find_all("th")] == [
        "Field", "Current", "Incoming", "Choice"]
    rows = {tr.find("th").text.replace(" ≠ differs", ""): tr for tr in table.find("tbody").find_all("tr")}
    # differing fields: a class and a visible marker, not colour alone
    for name in ("Host", "Owner", "Environment"):
        assert "differs" in rows[name].get("class").split(), name
        assert "≠ differs" in rows[name].text
    assert rows["Name"].get("class") == "same" and "differs" not in rows["Name"].text
    assert rows["Host"].find("td", class_="current").text == "db1.example.com"
    assert rows["Host"].find("td", class_="incoming").text == "db-new.example.com"
    # a labelled radio pair per differing field, defaulting to "take it" only where empty now
    keep_host = labelled_control(page, "Keep current")  # the first pair: Host
    assert keep_host.get("name") == "field-host" and keep_host.get("checked") is not None
    owner_take = page.by_id("choice-owner-incoming")
    assert owner_take.get("checked") is not None
    assert page.find("label", for_="choice-owner-incoming").text == "Take incoming"
    assert page.by_id("choice-name-current") is None  # same value: nothing to choose
    buttons = [b.text for b in page.find("form", id="resolve").find_all("button")]
    assert buttons == ["Merge", "Create new", "Dismiss"]
    assert "Keyboard shortcuts" in page.find("details", class_="card shortcuts").text
    # j / k: the neighbouring open items (newest first: fields, pair, record)
    nav = page.find("nav", aria_label="Open items")
    assert nav.find("a", rel="prev").get("href") == f"/conflicts/{world['pair'].id}"
    assert nav.find("a", rel="next") is None


def test_create_new_is_offered_only_where_it_applies(client, login_as, world):
    login_as("admin")
    for item in ("pair", "fields"):
        page = parse(client.get(f"/conflicts/{world[item].id}").data)
        buttons = [b.text for b in page.find("form", id="resolve").find_all("button")]
        assert buttons == ["Merge", "Dismiss"], item
    pair = parse(client.get(f"/conflicts/{world['pair'].id}").data)
    tags_row = [tr for tr in pair.find_all("tr") if tr.find("th") and tr.find("th").text.startswith("Aliases")]
    assert not tags_row or "both kept" in tags_row[0].text


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_readers_see_the_item_without_choices_or_buttons(client, login_as, world, role):
    login_as(role)
    page = parse(client.get(f"/conflicts/{world['record'].id}").data)
    assert page.find("form", id="resolve") is None
    assert page.find("input", type="radio") is None
    assert "≠ differs" in page.find("table", class_="data compare").text
    queue = parse(client.get("/conflicts").data)
    assert queue.find("form", id="bulk") is None or queue.find("input", type="checkbox") is None
    assert "Merge selected" not in queue.text


def test_detail_htmx_request_gets_the_panel_only(client, login_as, world):
    login_as("viewer")
    response = client.get(f"/conflicts/{world['pair'].id}", headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert parse(html).by_id("conflict") is not None and "Duplicate assets" in html
    assert 'hx-swap-oob' not in html


def test_unknown_item_is_404(client, login_as):
    login_as("viewer")
    assert client.get("/conflicts/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/conflicts/nonsense").status_code == 404


# --- resolving ------------------------------------------------------------------------------

def test_merge_by_form_redirects_to_the_next_open_item(client, login_as, world, session):
    login_as("reviewer")
    response = client.post(f"/conflicts/{world['fields'].id}/resolve",
                           data={"action": "merge", "field-environment": "incoming"})
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == f"/conflicts/{world['pair'].id}"
    session.expire_all()
    assert session.get(Asset, world["orders"].id).environment.value == "staging"
    assert status_of(session, world["fields"]) == ConflictStatus.merged
    page = parse(client.get(response.headers["Location"]).data)
    assert "Merged field conflict csv:2." in page.by_id("flashes").text


def test_resolve_by_htmx_swaps_in_the_next_item(client, login_as, world, session):
    login_as("reviewer")
    before = audit_count(session)
    response = client.post(f"/conflicts/{world['record'].id}/resolve",
                           data={"action": "merge", "field-host": "incoming", "field-owner": "current"},
                           headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    assert "<html" not in html
    # the next open item (the record was the last in queue order: back up to the pair)
    assert response.headers["HX-Push-Url"] == f"/conflicts/{world['pair'].id}"
    page = parse(html)
    assert "Duplicate assets" in page.by_id("conflict").text
    # the flash and the open count change beside the panel
    flashes = page.by_id("flashes")
    assert flashes.get("hx-swap-oob") == "true" and "Merged possible duplicate csv:1." in flashes.text
    assert page.by_id("review-count").text == "2 open"
    session.expire_all()
    orders = session.get(Asset, world["orders"].id)
    assert (orders.host, orders.owner) == ("db-new.example.com", None)
    assert audit_count(session) == before + 2  # the asset's update and the resolution


def test_create_new_and_dismiss_by_form(client, login_as, world, session):
    login_as("admin")
    response = client.post(f"/conflicts/{world['record'].id}/resolve", data={"action": "create"})
    assert response.status_code == 303
    session.expire_all()
    created = session.get(Conflict, world["record"].id)
    assert created.status == ConflictStatus.created
    assert session.get(Asset, created.result_asset_id).host == "db-new.example.com"
    response = client.post(f"/conflicts/{world['pair'].id}/resolve", data={"action": "dismiss"})
    assert response.status_code == 303
    assert status_of(session, world["pair"]) == ConflictStatus.dismissed


def test_resolving_the_last_item_leads_back_to_the_empty_queue(client, login_as, world, session):
    for item in ("record", "pair"):
        conflicts.resolve(session, Actor.system(), world[item].id, "dismiss")
    login_as("reviewer")
    response = client.post(f"/conflicts/{world['fields'].id}/resolve", data={"action": "dismiss"})
    assert response.status_code == 303 and urlsplit(response.headers["Location"]).path == "/conflicts"
    html = client.get("/conflicts").get_data(as_text=True)
    assert "No open items left in the review queue." in html and EMPTY_STATE in html

    item = field_conflict(session, world["orders"], {"environment": ["production", "test"]})
    response = client.post(f"/conflicts/{item.id}/resolve", data={"action": "dismiss"}, headers=HTMX)
    assert response.status_code == 200
    assert response.headers["HX-Push-Url"] == "/conflicts"
    assert "No open items left." in parse(response.data).by_id("conflict").text


def test_a_resolved_item_shows_its_resolution_read_only(client, login_as, world, session):
    conflicts.resolve(session, Actor(user_id=None, label="x"), world["fields"].id, "merge",
                      {"environment": "incoming"})
    login_as("reviewer")
    page = parse(client.get(f"/conflicts/{world['fields'].id}").data)
    assert "Resolved: merged" in page.find("div", class_="card resolution").text
    assert page.find("form", id="resolve") is None and page.find("input", type="radio") is None
    row = [tr for tr in page.find_all("tr") if tr.find("th") and tr.find("th").text.startswith("Environment")][0]
    assert row.find("td", class_="choice").text == "took incoming"


def test_resolving_again_is_409_with_the_item_read_only(client, login_as, world, session):
    conflicts.resolve(session, Actor.system(), world["record"].id, "dismiss")
    login_as("reviewer")
    before = audit_count(session)
    response = client.post(f"/conflicts/{world['record'].id}/resolve", data={"action": "merge"},
                           headers=HTMX)
    assert response.status_code == 409
    page = parse(response.data)
    assert "already resolved (dismissed" in page.find(role="alert").text
    assert page.find("form", id="resolve") is None
    assert audit_count(session) == before


@pytest.mark.parametrize("data,message", [
    ({"action": "approve"}, "Choose merge, create or dismiss."),
    ({"action": "merge", "field-owner": "both"}, "Choose “current” or “incoming”."),
    ({"action": "create", "field-environment": "current"}, "choose Merge or Dismiss"),
])
def test_bad_choices_are_422_and_keep_the_form(client, login_as, world, session, data, message):
    item = world["fields"] if data["action"] == "create" else world["record"]
    login_as("reviewer")
    response = client.post(f"/conflicts/{item.id}/resolve", data=data)
    assert response.status_code == 422
    page = parse(response.data)
    assert in_app_layout(response.data)
    assert message in page.find(role="alert").text
    assert page.find("form", id="resolve") is not None
    assert status_of(session, item) == ConflictStatus.open


def test_a_chosen_value_survives_a_refused_submit(client, login_as, world):
    login_as("reviewer")
    response = client.post(f"/conflicts/{world['record'].id}/resolve",
                           data={"action": "approve", "field-host": "incoming"})
    assert parse(response.data).by_id("choice-host-incoming").get("checked") is not None


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_only_reviewers_resolve(client, login_as, world, session, role):
    login_as(role)
    before = audit_count(session)
    for url, data in [(f"/conflicts/{world['record'].id}/resolve", {"action": "dismiss"}),
                      ("/conflicts/bulk", {"ids": [str(world["record"].id)], "action": "dismiss"})]:
        response = client.post(url, data=data)
        assert response.status_code == 403
        assert "needs the reviewer role" in response.get_data(as_text=True)
    assert status_of(session, world["record"]) == ConflictStatus.open
    assert audit_count(session) == before


def test_a_candidate_trashed_meanwhile_disables_merge_and_says_why(client, login_as, world, session):
    from webapp.services import assets

    assets.delete(session, Actor.system(), world["orders"].id)
    login_as("reviewer")
    page = parse(client.get(f"/conflicts/{world['record'].id}").data)
    assert "The candidate asset is in the trash." in page.find(role="status").text
    merge = [b for b in page.find_all("button") if b.text == "Merge"][0]
    assert merge.get("disabled") is not None
    response = client.post(f"/conflicts/{world['record'].id}/resolve", data={"action": "merge"})
    assert response.status_code == 409
    assert "moved to the trash" in parse(response.data).find(role="alert").text


# --- bulk -----------------------------------------------------------------------------------

def test_bulk_resolve_selected_items_with_a_mixed_outcome(client, login_as, world, session):
    login_as("reviewer")
    html = client.get("/conflicts?min_confidence=60").get_data(as_text=True)
    action = parse(html).find("form", id="bulk").get("action")
    assert parse_qs(urlsplit(action).query) == {"min_confidence": ["60"]}
    ids = [str(world[k].id) for k in ("record", "pair", "fields")]
    response = client.post(action, data={"ids": ids, "action": "create", "confirmed": "yes"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/conflicts?min_confidence=60")
    after = parse(client.get(response.headers["Location"]).data)
    flashes = after.by_id("flashes").text
    assert "Resolved 1 item (a new asset created)." in after.by_id("queue").text
    assert "2 items were not resolved:" in flashes
    assert "csv:2: A field conflict is about an existing asset" in flashes
    assert "Dismiss keeps them apart" in flashes
    assert status_of(session, world["record"]) == ConflictStatus.created
    assert status_of(session, world["pair"]) == ConflictStatus.open


def test_bulk_with_nothing_selected_is_422(client, login_as, world):
    login_as("reviewer")
    response = client.post("/conflicts/bulk?kind=field_conflict", data={"action": "dismiss"})
    assert response.status_code == 422
    page = parse(response.data)
    assert "Select at least one item." in page.by_id("queue").find(role="alert").text
    assert [r["Record key"] for r in queue_rows(response.get_data(as_text=True))] == ["csv:2"]


def test_bulk_dismiss_empties_the_queue(client, login_as, world, session):
    login_as("admin")
    ids = [str(world[k].id) for k in ("record", "pair", "fields")]
    response = client.post("/conflicts/bulk", data={"ids": ids, "action": "dismiss", "confirmed": "yes"})
    assert response.status_code == 303
    html = client.get("/conflicts").get_data(as_text=True)
    assert "Resolved 3 items (dismissed)." in html and EMPTY_STATE in html
    assert re.search(r'id="review-count"[^>]*>0<', html)


def test_the_import_run_links_its_flagged_records_to_their_items(client, login_as, world):
    login_as("viewer")
    page = parse(client.get(f"/imports/{world['run'].id}").data)
    link = page.by_id("records").find("a", href=f"/conflicts/{world['record'].id}")
    assert link is not None and link.text == "in the review queue"


def test_bulk_redirect_keeps_only_the_queue_filters(client, login_as, world):
    login_as("reviewer")
    response = client.post("/conflicts/bulk?kind=field_conflict&_external=1&_scheme=javascript",
                           data={"ids": [str(world["fields"].id)], "action": "dismiss"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/conflicts?kind=field_conflict"


# --- why an item was not merged automatically ---------------------------------------------------

@pytest.mark.parametrize(("confidence", "reasons", "expected"), [
    (0.93, ["name similarity 0.97 (+0.50)", "same engine family (+0.20)"],
     "It scored 93%, above the auto-merge threshold (90%), but without a strong identifier"),
    (0.72, ["name similarity 0.82 (+0.40)"], "It scored 72%, below the auto-merge threshold (90%)."),
    (0.95, ["same host:port db1:5432 (+0.90)", "ambiguous: the endpoint matches 2 assets (“a”, “b”)"],
     "The record's endpoint matches more than one asset"),
])
def test_the_item_says_which_evidence_was_missing(client, login_as, session, confidence, reasons,
                                                  expected):
    run = make_run(session)
    candidate = make_asset(session, name="orders-db")
    item = possible_duplicate(session, candidate, INCOMING, run=run, confidence=confidence,
                              reasons=reasons)
    login_as("viewer")
    page = parse(client.get(f"/conflicts/{item.id}").data)
    why = page.find("p", class_="line why-not-merged")
    assert why is not None and expected in why.text


def test_a_field_conflict_has_no_why_not_merged(client, login_as, session):
    candidate = make_asset(session, name="orders-db")
    item = field_conflict(session, candidate, {"owner": ["a@example.com", "b@example.com"]},
                          run=make_run(session))
    login_as("viewer")
    assert parse(client.get(f"/conflicts/{item.id}").data).find("p", class_="line why-not-merged") is None
