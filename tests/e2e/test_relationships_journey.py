"""An analyst links two assets in a real browser (SPEC §5, the asset's Relationships tab): opens
asset A's Relationships tab, finds asset B with `Find asset`, adds "A depends on B", sees it
listed and drawn, clicks B in the drawn graph and lands on B's tab, where the impact list says A
depends on it; then links a replica from there and reads the graph one way at a time.

Screenshots go to test-artifacts/ (relationships-*.png); any browser console error (a CSP
violation: Cytoscape would add an inline <style>, a failed script) or server error fails the test.
Screenshots keep the text caret (`caret="initial"`, see test_review_journey.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.e2e.conftest import htmx_settled
from tests.e2e.test_journey import browser_page  # noqa: F401  (the shared browser fixture)
from tests.factories import make_asset
from webapp.models import AssetRelationship, RelationshipKind

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]


def test_analyst_links_two_assets_and_follows_the_graph(  # type: ignore[no-untyped-def]
    live_server: str, session, make_user, browser_page  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    page, problems = browser_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    api = make_asset(session, name="orders-api-db", host="api-db.dc1.example.com",
                     environment="production", criticality="high")
    orders = make_asset(session, name="orders-db", host="orders.dc1.example.com",
                        environment="production", criticality="critical")
    replica = make_asset(session, name="orders-db-replica", host="replica.dc2.example.com",
                         environment="staging", criticality="medium")
    make_asset(session, name="billing-db", host="billing.dc1.example.com", environment="development")
    analyst = make_user("analyst", email="ana@example.com")
    graph = page.locator("#graph")

    def url(path: str) -> re.Pattern[str]:
        return re.compile(re.escape(live_server + path) + r"(\?.*)?$")

    def drawn(nodes: int, edges: int, state: str = "ready") -> None:
        expect(graph).to_have_attribute("data-state", state)
        expect(graph).to_have_attribute("data-node-count", str(nodes))
        expect(graph).to_have_attribute("data-edge-count", str(edges))
        expect(page.locator("[data-graph-nodes] li")).to_have_count(nodes)

    def pick(text: str, name: str) -> None:
        page.get_by_label("Find asset", exact=True).fill(text)
        choice = page.locator("#find-results").get_by_role("button", name=re.compile("^" + re.escape(name) + " "))
        expect(choice).to_be_visible()
        htmx_settled(page)
        choice.click()
        expect(page.locator("[data-chosen-name]")).to_have_text(name)

    try:
        page.goto(live_server + "/login")
        page.get_by_label("Email", exact=True).fill(analyst.email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Relationships")).to_be_visible()

        # A's Relationships tab: nothing linked yet
        page.goto(f"{live_server}/assets/{api.id}")
        page.get_by_role("navigation", name="Asset sections").get_by_role("link", name="Relationships").click()
        expect(page).to_have_url(url(f"/assets/{api.id}/relationships"))
        htmx_settled(page)
        drawn(1, 0, state="empty")
        expect(page.locator("[data-graph-message]")).to_contain_text("No relationships yet")
        expect(page.get_by_text("Nothing depends on it.")).to_be_visible()
        page.screenshot(path=SHOTS / "relationships-01-empty.png", full_page=True, caret="initial")

        # find B as you type, pick it, say how they relate
        pick("orders-d", "orders-db")
        expect(page.locator("[data-link-preview]")).to_have_text("Adds: orders-api-db depends on orders-db.")
        page.get_by_label("Description", exact=True).fill("reads and writes the orders schema")
        page.get_by_role("button", name="Add relationship").click()
        expect(page.locator("#flashes")).to_contain_text("Added: orders-api-db depends on orders-db.")
        htmx_settled(page)
        row = page.locator("table.links tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("orders-api-db depends on orders-db")
        expect(row).to_contain_text("reads and writes the orders schema")
        # the graph reloaded itself: A and B, one arrow
        drawn(2, 1)
        expect(page.locator("[data-graph-edges] li")).to_have_text(["orders-api-db depends on orders-db"])
        page.screenshot(path=SHOTS / "relationships-02-added.png", full_page=True, caret="initial")
        page.locator(".graph-card").screenshot(path=SHOTS / "relationships-02-graph.png", caret="initial")

        # click B in the drawing: its Relationships tab
        at = page.eval_on_selector("#graph", "(el, id) => el.cy.$id(id).renderedPosition()", str(orders.id))
        box = graph.bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])
        expect(page).to_have_url(url(f"/assets/{orders.id}/relationships"))
        htmx_settled(page)
        impact = page.locator("section.impact")
        expect(impact.locator(".impact-count")).to_contain_text("1 asset depends on it")
        expect(impact.locator("tbody tr")).to_have_text([re.compile(r"orders-api-db\s+high\s+production\s+direct")])
        drawn(2, 1)
        page.screenshot(path=SHOTS / "relationships-03-provider.png", full_page=True, caret="initial")

        # from B: B replicates to its replica (the replica depends on B)
        pick("replica", "orders-db-replica")
        page.get_by_label("Kind", exact=True).select_option(label="replicates to")
        expect(page.locator("[data-link-preview]")).to_have_text("Adds: orders-db replicates to orders-db-replica.")
        page.get_by_role("button", name="Add relationship").click()
        expect(page.locator("#flashes")).to_contain_text("Added: orders-db replicates to orders-db-replica.")
        htmx_settled(page)
        expect(impact.locator(".impact-count")).to_contain_text("2 assets depend on it")
        drawn(3, 2)

        # one way at a time, without a page load; the URL keeps the choice
        page.evaluate("window.stillTheSamePage = true")
        page.get_by_label("Direction", exact=True).select_option(label="Upstream")
        drawn(1, 0, state="empty")
        expect(page.locator("[data-graph-message]")).to_contain_text("Nothing upstream")
        expect(page).to_have_url(re.compile(r"direction=up"))
        page.get_by_label("Direction", exact=True).select_option(label="Downstream")
        page.get_by_label("Depth", exact=True).select_option("1")
        drawn(3, 2)
        expect(page).to_have_url(url(f"/assets/{orders.id}/relationships?depth=1&direction=down"))
        assert page.evaluate("window.stillTheSamePage") is True
        page.screenshot(path=SHOTS / "relationships-04-downstream.png", full_page=True, caret="initial")
        page.locator(".graph-card").screenshot(path=SHOTS / "relationships-04-graph.png", caret="initial")

        # a reload shows the same graph
        page.reload()
        expect(page.get_by_label("Direction", exact=True)).to_have_value("down")
        drawn(3, 2)
    finally:
        page.screenshot(path=SHOTS / "relationships-last.png", full_page=True, caret="initial")

    session.expire_all()
    links = {(r.source_id, r.target_id, r.kind) for r in session.scalars(select(AssetRelationship))}
    assert links == {(api.id, orders.id, RelationshipKind.depends_on),
                     (orders.id, replica.id, RelationshipKind.replicates_to)}
    assert problems == []
