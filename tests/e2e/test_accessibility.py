"""Every page, checked by axe-core in Chromium (WCAG 2.0–2.2 A and AA rules), at 1440 px and
390 px wide, on a realistic inventory (the demo's 120 assets with long names and many tags, an
import, review items, links). No page may have a serious or critical violation.

Each page is also saved as a screenshot at both widths (test-artifacts/a11y-*.png), and the
counts of violations per page and impact go to test-artifacts/axe-report.json.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import htmx_settled
from tests.e2e.test_journey import browser_page  # noqa: F401  (the shared browser fixture)
from tests.factories import make_asset
from tests.review_factories import make_run, possible_duplicate
from webapp.models import Asset
from webapp.services import change_sets, demo, imports
from webapp.services.actor import Actor

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
BLOCKING = {"serious", "critical"}
WIDTHS = (1440, 390)
LONG_NAME = "payments-ledger-reconciliation-primary-postgresql-eu-west-1-production-cluster-01"

WIDEST = """() => { const out = []; const w = window.innerWidth;
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.right > w + 1 && !(el.parentElement && el.parentElement.closest('.table-wrap')))
      out.push(`${el.tagName.toLowerCase()}.${el.className}#${el.id} right=${Math.round(r.right)}`);
  }
  return out.slice(0, 6); }"""

# the dashboard's charts (static/js/charts.js): [figure id, drawn by Chart.js, canvas width,
# canvas height], and where the first bar of the engine chart is drawn (to click it)
CHARTS = """() => Array.from(document.querySelectorAll('figure.chart[data-chart]')).map(f => {
  const c = f.querySelector('canvas');
  return [f.id, !!f.chart, c ? c.getBoundingClientRect().width : 0, c ? c.getBoundingClientRect().height : 0]; })"""
FIRST_ENGINE_BAR = """() => { const f = document.getElementById('chart-engine');
  const bar = f.chart.getDatasetMeta(0).data[0]; const r = f.querySelector('canvas').getBoundingClientRect();
  return {x: r.left + (bar.base + bar.x) / 2, y: r.top + bar.y,
          href: f.querySelector('tbody td a').getAttribute('href')}; }"""

pytestmark = [pytest.mark.browser,
              pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning")]


def _world(session, make_user) -> dict[str, object]:  # type: ignore[no-untyped-def]
    demo.load(session, count=120)
    long = make_asset(session, name=LONG_NAME, host="ledger-reconciliation-primary.db.eu-west-1.corp.example.com",
                      owner="payments-platform-database-team@example.com",
                      tags=[f"team-{i}" for i in range(12)] + ["pci-dss", "gdpr-article-32"],
                      metadata={"nmap_cpe": ["cpe:/a:postgresql:postgresql:15"], "tier": "1"})
    data = json.dumps({"source": "cmdb", "assets": [
        {"name": f"imported-{i}", "engine": "mysql", "host": f"imp{i}.corp.example", "port": 3306}
        for i in range(8)]}).encode()
    run = imports.create_run(session, Actor.cli(), data=data, filename="cmdb-export.json")
    imports.execute(session, run.id)
    item = possible_duplicate(session, long, {"name": LONG_NAME + "-replica", "engine": "postgresql"},
                              run=make_run(session), record_key="nmap:10.0.0.9:5432")
    admin = make_user("admin", email="ada@example.com")
    change_set = change_sets.create(session, Actor.cli(), change_sets.Selection.of_ids([long.id]),
                                    change_sets.BulkAction.parse({"owner": "dba@example.com"}))
    return {"asset": long.id, "run": run.id, "item": item.id, "admin": admin.id,
            "change_set": change_set.id}


def _pages(world: dict[str, object]) -> dict[str, str]:
    asset, run, item, admin = world["asset"], world["run"], world["item"], world["admin"]
    return {
        "dashboard": "/", "assets": "/assets", "assets-filtered": "/assets?engine=postgresql&engine=mysql",
        "asset": f"/assets/{asset}", "asset-edit": f"/assets/{asset}/edit",
        "asset-history": f"/assets/{asset}/history",
        "asset-relationships": f"/assets/{asset}/relationships", "asset-new": "/assets/new",
        "trash": "/trash", "relationships": "/relationships", "imports": "/imports",
        "import": f"/imports/{run}", "conflicts": "/conflicts", "conflict": f"/conflicts/{item}",
        "audit": "/audit", "search": "/search?q=ledger", "users": "/admin/users",
        "user": f"/admin/users/{admin}/edit", "settings": "/admin/settings",
        "account": "/account", "tokens": "/account/tokens", "tags": "/tags",
        "change-sets": "/change-sets", "change-set": f"/change-sets/{world['change_set']}",
        "policy": "/policy", "asset-policy": f"/assets/{asset}/policy",
        "policy-report": "/policy/frameworks/soc2/report",
        "tasks": "/admin/tasks", "notifications": "/notifications",
        "notification-settings": "/account/notifications",
    }


def test_every_page_has_no_serious_or_critical_violation(  # type: ignore[no-untyped-def]
    live_server: str, session, make_user, browser_page  # noqa: F811
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    page, problems = browser_page
    world = _world(session, make_user)
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server + "/")
    ARTIFACTS.mkdir(exist_ok=True)
    axe = Axe()
    report: dict[str, dict[str, object]] = {}
    blocking: list[str] = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for name, path in _pages(world).items():
            response = page.goto(live_server + path)
            assert response is not None and response.status == 200, (path, response and response.status)
            htmx_settled(page)
            page.screenshot(path=ARTIFACTS / f"a11y-{width}-{name}.png", full_page=True)
            results = axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG}})
            violations = results.response["violations"]
            counts = Counter(v["impact"] for v in violations)
            report[f"{width} {name}"] = {
                "counts": dict(counts),
                "violations": [{"id": v["id"], "impact": v["impact"], "nodes": len(v["nodes"]),
                                "example": v["nodes"][0]["target"] if v["nodes"] else None}
                               for v in violations],
            }
            blocking += [f"{width} {name}: {v['id']} ({v['impact']}, {len(v['nodes'])} nodes: "
                         f"{v['nodes'][0]['target'] if v['nodes'] else ''})"
                         for v in violations if v["impact"] in BLOCKING]
            if name == "dashboard":  # the charts are drawn, and a bar opens the list behind it
                charts = page.evaluate(CHARTS)
                # the inventory's four, and the policy panels the demo's results fill
                assert {c[0] for c in charts} >= {
                    "chart-engine", "chart-environment", "chart-criticality", "chart-status",
                    "chart-compliance", "chart-most-failed"} and all(
                    drawn and w > 0 and h > 0 for _, drawn, w, h in charts), charts
                bar = page.evaluate(FIRST_ENGINE_BAR)
                page.mouse.click(bar["x"], bar["y"])
                page.wait_for_url(live_server + bar["href"])
                page.go_back()
            # nothing spills sideways out of the page at either width
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            report[f"{width} {name}"]["horizontal_overflow_px"] = overflow
            if overflow > 0:  # what sticks out (not counting what scrolls inside its own box)
                report[f"{width} {name}"]["wider_than_the_page"] = page.evaluate(WIDEST)
    (ARTIFACTS / "axe-report.json").write_text(json.dumps(report, indent=2))
    assert not blocking, "\n".join(blocking)
    assert not problems, problems
    assert session.get(Asset, world["asset"]) is not None
