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
