"""Past COUNT_CAP matches, /assets says "about N" (the planner's estimate on PostgreSQL) and
offers an exact count, which `count=exact` gives."""

from __future__ import annotations

from tests.factories import make_asset
from tests.web.pages import parse
from webapp.services import asset_search


def test_past_the_cap_the_page_estimates_and_counts_exactly_on_request(client, session, login_as,
                                                                        monkeypatch):
    monkeypatch.setattr(asset_search, "COUNT_CAP", 3)
    for i in range(6):
        make_asset(session, name=f"db-{i}")
    login_as("viewer")
    page = parse(client.get("/assets").data)
    count = page.find("p", class_="count")
    if session.get_bind().dialect.name == "postgresql":
        assert count.text.startswith("About ")
    else:
        assert count.text.startswith("More than 3 assets")
    link = count.find("a")
    assert link is not None and link.text == "Count exactly" and "count=exact" in link.get("href")
    exact = parse(client.get(link.get("href")).data).find("p", class_="count")
    assert exact.text.startswith("6 assets") and exact.find("a") is None


def test_past_the_cap_every_filter_can_be_estimated(client, session, login_as, monkeypatch):
    """The estimate sends the filtered statement as text: filters with a list parameter (any of
    several engines, the policy statuses) must render too (a 500 at 1,000,000 assets once)."""
    monkeypatch.setattr(asset_search, "COUNT_CAP", 2)
    for i in range(4):
        make_asset(session, name=f"db-{i}", engine="mysql", environment="production", owner=None)
    login_as("viewer")
    for query in ("engine=mysql&engine=postgresql", "policy=ownership.owner_set",
                  "policy_status=fail&policy_status=unknown", "policy_failing=true",
                  "unowned=true&environment=production&environment=staging"):
        response = client.get(f"/assets?{query}")
        assert response.status_code == 200, query
        count = parse(response.data).find("p", class_="count")
        assert count.text.startswith(("About ", "More than 2 assets")), (query, count.text)


def test_the_bulk_bar_counts_the_filter_as_the_page_does(client, session, login_as, monkeypatch):
    """"Select all … matching this filter" says what the count line says: past the cap, the
    estimate on PostgreSQL ("about N", not "3+"), "N+" where there is none."""
    monkeypatch.setattr(asset_search, "COUNT_CAP", 3)
    for i in range(6):
        make_asset(session, name=f"db-{i}")
    login_as("analyst")
    page = parse(client.get("/assets").data)
    count = page.find("p", class_="count").text
    scope = " ".join(page.find("input", name="scope", value="filter").parent.text.split())
    if session.get_bind().dialect.name == "postgresql":
        estimate = count.removeprefix("About ").split(" assets")[0]
        assert scope == f"Select all about {estimate} matching this filter", (count, scope)
    else:
        assert count.startswith("More than 3 assets") and scope == "Select all 3+ matching this filter"
