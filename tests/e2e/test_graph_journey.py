"""The dependency graph reads well at real sizes (issue 13, part 6), in a real browser.

The demo inventory (`flask demo`: 240 assets, each system's databases linked) plus what a real
estate adds: a cache cluster of 24 nodes with long names hanging off the demo's busiest asset, and
an export store whose name carries a right-to-left override. A viewer opens the busiest asset's
Relationships tab at depth 3 and 4 and at 1440 and 390 px wide: every drawn node has a label,
the focal asset's is whole, the cluster's members fold into "+21 more" (a click shows them),
the colour choice recolours the boxes and the legend, and a label names the bidi control
instead of obeying it. Then the cluster itself, whose long name is the focal one.

Screenshots go to test-artifacts/ (graph-*.png); any browser console error (a CSP violation, a
failed script) or server error fails the test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select, union_all

from tests.conftest import PASSWORD
from tests.e2e.test_journey import browser_page  # noqa: F401  (the shared browser fixture)
from tests.factories import ACTOR, make_asset
from webapp.models import Asset, AssetRelationship
from webapp.services import demo, relationships

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CLUSTER = "orders-sessions-redis-cluster-production-eu-west-1"
MEMBERS = 24
MORE = f"+{MEMBERS - 3} more"  # graph.js shows 3 leaves of a hub with 6 or more
BIDI_NAME = "orders-exports-\u202egpj.db-archive"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]

# what the drawing holds, read from the Cytoscape instance
DRAWN = """() => {
  const cy = document.querySelector('#graph').cy;
  return cy.nodes().map(n => ({
    id: n.id(), label: n.data('label'), name: n.data('name') || null, root: n.hasClass('root'),
    more: n.hasClass('more'), colour: n.style('border-color'),
    x: n.position('x'), y: n.position('y'),
  }));
}"""


def busiest(session) -> Asset:  # type: ignore[no-untyped-def]
    """The asset with the most links."""
    rel = AssetRelationship.__table__
    ends = union_all(
        select(rel.c.source_id.label("id")), select(rel.c.target_id.label("id"))
    ).subquery()
    top = session.execute(
        select(ends.c.id, func.count())
        .group_by(ends.c.id)
        .order_by(func.count().desc(), ends.c.id)
        .limit(1)
    ).one()
    return session.get(Asset, top[0])


def test_the_busiest_asset_s_graph_is_readable(  # type: ignore[no-untyped-def]
    live_server: str,
    session,
    make_user,
    browser_page,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    page, problems = browser_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    demo.load(session)
    session.commit()
    hub = busiest(session)
    cluster = make_asset(
        session, name=CLUSTER, engine="redis", environment="production", criticality="high"
    )
    relationships.create(session, ACTOR, source_id=cluster.id, target_id=hub.id, kind="depends_on")
    for i in range(MEMBERS):
        node = make_asset(
            session,
            name=f"{CLUSTER}-node-{i:03d}",
            engine="redis",
            environment="production",
            criticality="medium",
        )
        relationships.create(
            session, ACTOR, source_id=node.id, target_id=cluster.id, kind="member_of"
        )
    exports = make_asset(session, name=BIDI_NAME, engine="postgresql", environment="staging")
    vault = make_asset(
        session, name="orders-exports-backup-vault", engine="other", environment="staging"
    )
    relationships.create(session, ACTOR, source_id=exports.id, target_id=hub.id, kind="depends_on")
    relationships.create(
        session, ACTOR, source_id=exports.id, target_id=vault.id, kind="backs_up_to"
    )
    builder = make_asset(
        session, name="orders-exports-report-builder", engine="mysql", environment="staging"
    )
    relationships.create(
        session, ACTOR, source_id=builder.id, target_id=exports.id, kind="depends_on"
    )
    viewer = make_user("viewer", email="vic@example.com")
    graph = page.locator("#graph")

    def open_tab(asset: Asset, depth: int, width: int, height: int = 900) -> list[dict]:
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server}/assets/{asset.id}/relationships?depth={depth}&direction=both")
        expect(graph).to_have_attribute("data-state", "ready")
        return page.evaluate(DRAWN)

    def readable(nodes: list[dict], focal: str, axis: str = "x") -> None:
        """Every node labelled, the focal one whole, no bidi control drawn, and what depends on
        the focal asset before it (left, or above on a phone), what it depends on after it."""
        assert nodes and all(n["label"] and n["label"].strip() for n in nodes)
        root = [n for n in nodes if n["root"]]
        assert len(root) == 1 and root[0]["label"].replace("\n", "") == focal
        assert all("\u202e" not in n["label"] for n in nodes)
        sides = {n["id"]: n for n in nodes}
        data = page.evaluate(
            "() => document.querySelector('#graph').cy.nodes('.asset').map("
            "n => [n.id(), n.data('side'), n.data('depth')])"
        )
        for node_id, side, depth in data:
            if side == "down" and depth == 1:
                assert sides[node_id][axis] < root[0][axis], node_id
            if side == "up" and depth == 1:
                assert sides[node_id][axis] > root[0][axis], node_id

    def mores(nodes: list[dict]) -> list[str]:
        return sorted(n["label"] for n in nodes if n["more"])

    try:
        page.goto(live_server + "/login")
        page.get_by_label("Email", exact=True).fill(viewer.email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()

        # the busiest asset at depth 3, wide: the graph comes before the impact list
        nodes = open_tab(hub, 3, 1440)
        readable(nodes, hub.name)
        assert MORE in mores(nodes)
        graph_top = graph.bounding_box()["y"]  # type: ignore[index]
        assert graph_top < page.locator("section.impact").bounding_box()["y"]  # type: ignore[index]
        assert graph_top < page.locator("#links-title").bounding_box()["y"]  # type: ignore[index]
        # the bidi control is named, not obeyed, on the canvas and in the list
        bidi = [n for n in nodes if n["name"] and "gpj" in n["name"]]
        assert bidi and "[U+202E]" in bidi[0]["name"] and "[U+202E]" in bidi[0]["label"]
        expect(page.locator("[data-graph-nodes]")).to_contain_text(
            "orders-exports-[U+202E]gpj.db-archive"
        )
        # a long member name is shortened in the middle, its full name on hover
        member = next(n for n in nodes if n["name"] and n["name"].startswith(CLUSTER + "-node-"))
        assert "…" in member["label"] and member["label"].endswith(member["name"][-6:])
        at = page.evaluate(
            "id => document.querySelector('#graph').cy.$id(id).renderedPosition()", member["id"]
        )
        box = graph.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + at["x"], box["y"] + at["y"])
        expect(page.locator("[data-graph-tip]")).to_be_visible()
        expect(page.locator("[data-graph-tip] strong")).to_have_text(member["name"])
        page.screenshot(path=SHOTS / "graph-01-depth3-1440.png", full_page=True)
        page.mouse.move(1, 1)

        # depth 4, wide
        nodes = open_tab(hub, 4, 1440)
        readable(nodes, hub.name)
        assert MORE in mores(nodes)
        assert graph.get_attribute("data-view") == "whole"
        page.locator(".graph-card").screenshot(path=SHOTS / "graph-02-depth4-1440.png")
        page.screenshot(path=SHOTS / "graph-02-depth4-1440-page.png", full_page=True)

        # colour by engine, then by criticality: the boxes and the legend follow
        by_environment = {n["id"]: n["colour"] for n in nodes if not n["more"]}
        page.get_by_label("Colour by", exact=True).select_option(label="Engine")
        by_engine = {n["id"]: n["colour"] for n in page.evaluate(DRAWN) if not n["more"]}
        assert by_engine != by_environment
        assert (
            len({by_engine[n["id"]] for n in nodes if n["name"] and n["name"].startswith(CLUSTER)})
            == 1
        )
        legend = page.locator("[data-graph-legend]")
        expect(legend).to_contain_text("redis")
        expect(legend).not_to_contain_text("production")
        expect(page).to_have_url(re.compile(r"colour=engine"))
        page.get_by_label("Colour by", exact=True).select_option(label="Criticality")
        by_criticality = {n["id"]: n["colour"] for n in page.evaluate(DRAWN) if not n["more"]}
        assert by_criticality not in (by_engine, by_environment)
        expect(legend).to_contain_text("medium")
        page.locator(".graph-card").screenshot(path=SHOTS / "graph-03-depth4-criticality.png")

        # "+21 more" shows the cluster's other members when clicked
        more = next(n for n in page.evaluate(DRAWN) if n["label"] == MORE)
        at = page.evaluate(
            "id => document.querySelector('#graph').cy.$id(id).renderedPosition()", more["id"]
        )
        box = graph.bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])
        expanded = page.evaluate(DRAWN)
        assert MORE not in mores(expanded)
        assert len(expanded) == len(nodes) + MEMBERS - 3 - 1
        assert (
            sum(1 for n in expanded if n["name"] and n["name"].startswith(CLUSTER + "-node-"))
            == MEMBERS
        )
        readable(expanded, hub.name)
        page.locator(".graph-card").screenshot(path=SHOTS / "graph-04-expanded.png")

        # the keyboard: Tab into the graph, the focal asset's tooltip; arrows move
        graph.focus()
        expect(page.locator("[data-graph-tip] strong")).to_have_text(hub.name)
        page.keyboard.press("ArrowLeft")
        expect(page.locator("[data-graph-tip] strong")).not_to_have_text(hub.name)
        expect(page.locator("[data-graph-status]")).to_contain_text("downstream")

        # depth 4 on a phone: every node labelled, the focal asset whole and in view
        nodes = open_tab(hub, 4, 390, 844)
        readable(nodes, hub.name, axis="y")
        assert MORE in mores(nodes)
        root_at = page.evaluate(
            "() => document.querySelector('#graph').cy.$('.root').renderedBoundingBox()"
        )
        width = graph.bounding_box()["width"]  # type: ignore[index]
        assert root_at["x1"] >= 0 and root_at["x2"] <= width
        zoom = page.evaluate("() => document.querySelector('#graph').cy.zoom()")
        assert zoom >= 0.8
        page.screenshot(path=SHOTS / "graph-05-depth4-390.png", full_page=True)
        page.locator(".graph-card").screenshot(path=SHOTS / "graph-05-depth4-390-graph.png")

        # the cluster: a long focal name, never cut; its members fold around it
        nodes = open_tab(cluster, 3, 1440)
        readable(nodes, CLUSTER)
        assert mores(nodes) == [MORE]
        page.locator(".graph-card").screenshot(path=SHOTS / "graph-06-cluster-1440.png")
        nodes = open_tab(cluster, 3, 390, 844)
        readable(nodes, CLUSTER, axis="y")
        page.locator(".graph-card").screenshot(path=SHOTS / "graph-07-cluster-390.png")
    finally:
        page.screenshot(path=SHOTS / "graph-last.png", full_page=True)

    assert problems == []
