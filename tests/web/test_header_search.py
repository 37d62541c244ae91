"""The header search (SPEC §5): a box on every page that finds assets (name, host, alias, id),
import runs (`#N`), review items and, for admins, users; grouped results under the box as you
type (htmx), or a page of its own when submitted without script."""

from __future__ import annotations

import pytest

from tests.factories import make_asset
from tests.review_factories import make_run, possible_duplicate
from tests.web.browser import HTMX
from tests.web.pages import parse

QUICK = {**HTMX, "HX-Target": "quick-results"}


@pytest.fixture
def world(session):  # type: ignore[no-untyped-def]
    orders = make_asset(session, name="orders-primary", host="db-orders-01.corp.example",
                        aliases=["10.2.3.4"], engine="postgresql")
    make_asset(session, name="billing", host="billing.corp.example", engine="mysql")
    run = make_run(session)
    item = possible_duplicate(session, orders, {"name": "orders-replica"}, run=run,
                              record_key="nmap:10.9.9.9:5432")
    return {"orders": orders, "run": run, "item": item}


def groups(html: str | bytes) -> dict[str, list[str]]:
    """{group heading: [link texts]} of the results."""
    page = parse(html)
    return {g.find("h2").text: [a.text for a in g.find_all("a")]
            for g in page.find_all(class_="search-group")}


def test_every_page_has_the_labelled_box(client, login_as, world):
    login_as("viewer")
    for url in ("/", "/assets", "/imports", "/conflicts", "/audit"):
        page = parse(client.get(url).data)
        box = page.find("input", id="header-q")
        assert box is not None and box.get("hx-get") == "/search", url
        label = page.find("label", for_="header-q")
        assert label is not None and label.text == "Find anything"
        assert box.get("hx-target") == "#quick-results"


@pytest.mark.parametrize("text", ["orders", "db-orders-01", "10.2.3.4", "ORDERS-PRIMARY"])
def test_assets_are_found_by_name_host_and_alias(client, login_as, world, text):
    login_as("viewer")
    found = groups(client.get("/search", query_string={"q": text}, headers=QUICK).data)
    assert [t.split(" ")[0] for t in found["Assets"]] == ["orders-primary"]


def test_an_asset_is_found_by_its_id_and_the_link_opens_it(client, login_as, world):
    login_as("viewer")
    orders = world["orders"]
    html = client.get("/search", query_string={"q": str(orders.id)}, headers=QUICK).data
    links = parse(html).find(class_="search-group").find_all("a")
    assert [a.get("href") for a in links] == [f"/assets/{orders.id}"]


def test_an_import_is_found_by_its_number(client, login_as, world):
    login_as("viewer")
    run = world["run"]
    for text in (f"#{run.number}", str(run.number)):
        found = groups(client.get("/search", query_string={"q": text}, headers=QUICK).data)
        assert found["Imports"][0].startswith(f"import #{run.number}"), found


def test_a_review_item_is_found_by_its_record_key(client, login_as, world):
    login_as("viewer")
    html = client.get("/search", query_string={"q": "10.9.9.9"}, headers=QUICK).data
    found = groups(html)
    assert list(found) == ["Review items"]
    assert "nmap:10.9.9.9:5432" in found["Review items"][0]
    assert parse(html).find(class_="search-group").find("a").get("href") == f"/conflicts/{world['item'].id}"


@pytest.mark.parametrize("role", ["viewer", "analyst", "reviewer", "admin"])
def test_users_are_found_by_admins_only(client, login_as, make_user, world, role):
    make_user("reviewer", email="carol.reviewer@example.com")
    login_as(role)
    found = groups(client.get("/search?q=carol", headers=QUICK).data)
    if role == "admin":
        assert found["Users"][0].startswith("carol.reviewer@example.com")
    else:
        assert "Users" not in found


def test_one_letter_finds_nothing_yet_and_no_match_says_so(client, login_as, world):
    login_as("viewer")
    html = client.get("/search?q=o", headers=QUICK).get_data(as_text=True)
    assert groups(html) == {} and "Nothing matches" not in html
    html = client.get("/search?q=zzzz-nothing", headers=QUICK).get_data(as_text=True)
    assert "Nothing matches “zzzz-nothing”" in html


def test_the_partial_is_the_result_list_and_the_page_is_whole(client, login_as, world):
    login_as("viewer")
    partial = client.get("/search?q=orders", headers=QUICK)
    html = partial.get_data(as_text=True)
    assert partial.status_code == 200 and "<html" not in html and 'id="quick-results"' in html
    page = client.get("/search?q=orders")
    full = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in full and "orders-primary" in full
    assert parse(full).find("input", id="search-page-q").get("value") == "orders"


def test_signed_out_the_search_asks_to_sign_in(client, make_user, world):
    make_user("admin")
    response = client.get("/search?q=orders")
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]
