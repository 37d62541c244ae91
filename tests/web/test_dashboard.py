"""The dashboard (SPEC §5, §12; issue 14 part 6): counts by engine, environment, criticality and
status as charts with their tables, stale, unverified and unowned production assets, open review
items. Every number is a link to the list behind it, and that list holds that many assets. The
`/assets` filters the new numbers link to (`unverified`, `unowned`) and the API's."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.factories import ACTOR, make_asset
from tests.web.pages import Element, parse
from tests.web.test_assets import result_names
from webapp.models import Asset
from webapp.models.base import utcnow
from webapp.services import assets as asset_service
from webapp.services import scheduled_tasks

HTMX = {"HX-Request": "true"}
CHARTS = ("engine", "environment", "criticality", "status")


def _seen(session, asset, *, days_ago: int) -> None:  # type: ignore[no-untyped-def]
    """As if a discovery import first reported the asset a year ago and last `days_ago`, and
    (past a day) a scan that covered it has missed it since the day after (SPEC §6)."""
    now = utcnow()
    missed = now - timedelta(days=days_ago - 1) if days_ago > 1 else None
    session.execute(update(Asset).where(Asset.id == asset.id).values(
        first_seen_at=now - timedelta(days=365), last_seen_at=now - timedelta(days=days_ago),
        missed_since=missed))
    session.commit()


@pytest.fixture
def inventory(session):  # type: ignore[no-untyped-def]
    """Six live assets and one in the trash:

    name       engine      environment  criticality  status    owner  discovery
    orders     postgresql  production   critical     active    yes    seen today
    ledger     postgresql  production   high         active    no     never (unverified)
    cache      redis       production   —            inactive  no     seen today
    reports    mysql       staging      high         active    no     never (unverified)
    legacy     mysql       test         low          active    yes    60 days ago (stale)
    retired    mysql       development  low          inactive  yes    60 days ago (not stale: inactive)
    trashed    oracle      production   critical     active    no     never (in the trash: counted nowhere else)
    """
    made = {
        "orders": make_asset(session, name="orders", engine="postgresql", environment="production",
                             criticality="critical"),
        "ledger": make_asset(session, name="ledger", engine="postgresql", environment="production",
                             criticality="high", owner=None),
        "cache": make_asset(session, name="cache", engine="redis", environment="production",
                            status="inactive", owner=None),
        "reports": make_asset(session, name="reports", engine="mysql", environment="staging",
                              criticality="high", owner=None),
        "legacy": make_asset(session, name="legacy", engine="mysql", environment="test",
                             criticality="low"),
        "retired": make_asset(session, name="retired", engine="mysql", environment="development",
                              criticality="low", status="inactive"),
        "trashed": make_asset(session, name="trashed", engine="oracle", environment="production",
                              criticality="critical", owner=None),
    }
    for name in ("orders", "cache"):
        _seen(session, made[name], days_ago=0)
    for name in ("legacy", "retired"):
        _seen(session, made[name], days_ago=60)
    asset_service.delete(session, ACTOR, made["trashed"].id)
    return made


def _table(page: Element, chart: str) -> dict[str, tuple[str, str | None]]:
    """{row label: (number shown, its link or None)} of a chart's table."""
    figure = page.by_id(f"chart-{chart}")
    assert figure is not None, chart
    rows = {}
    for tr in figure.find("table").find("tbody").find_all("tr"):
        cell = tr.find("td")
        link = cell.find("a")
        rows[tr.find("th").text] = (cell.text, link.get("href") if link else None)
    return rows


def _stat(page: Element, element_id: str) -> tuple[str, str]:
    stat = page.by_id(element_id)
    assert stat is not None, element_id
    return stat.find("span", class_="num").text, stat.get("href")


def _listed(client, href: str) -> int:  # type: ignore[no-untyped-def]
    """How many assets the list behind a link says it holds."""
    count = parse(client.get(href).data).find("p", class_="count").text
    match = re.match(r"([\d,]+) assets?", count)
    assert match, count
    return int(match.group(1).replace(",", ""))


def test_counts_by_group_each_linked_to_its_list(client, login_as, inventory):
    login_as("viewer")
    page = parse(client.get("/").data)
    assert _table(page, "engine") == {"mysql": ("3", "/assets?engine=mysql"),
                                      "postgresql": ("2", "/assets?engine=postgresql"),
                                      "redis": ("1", "/assets?engine=redis")}
    assert _table(page, "environment") == {
        "production": ("3", "/assets?environment=production"),
        "staging": ("1", "/assets?environment=staging"),
        "development": ("1", "/assets?environment=development"),
        "test": ("1", "/assets?environment=test")}
    # from critical down; an unset criticality has no filter to link to
    assert _table(page, "criticality") == {"critical": ("1", "/assets?criticality=critical"),
                                           "high": ("2", "/assets?criticality=high"),
                                           "low": ("2", "/assets?criticality=low"),
                                           "not set": ("1", None)}
    assert _table(page, "status") == {"active": ("4", "/assets?status=active"),
                                      "inactive": ("2", "/assets?status=inactive")}
    for chart in CHARTS:
        for label, (shown, href) in _table(page, chart).items():
            if href:
                assert _listed(client, href) == int(shown), (chart, label)


def test_chart_tables_are_accessible_and_drawable(client, login_as, inventory):
    login_as("viewer")
    page = parse(client.get("/").data)
    for chart in CHARTS:
        figure = page.by_id(f"chart-{chart}")
        assert figure.get("data-chart") in ("bar", "hbar", "doughnut", "line")
        assert figure.get("aria-labelledby") == f"chart-{chart}-title"
        table = figure.find("table")
        assert table.find("caption").text.startswith(f"By {chart}:")
        assert [th.get("scope") for th in table.find("thead").find_all("th")] == ["col", "col"]
        assert all(tr.find("th").get("scope") == "row" for tr in table.find("tbody").find_all("tr"))
        # the canvas is for sighted users with script; the table says the same to everyone else
        box = figure.find("div", class_="chart-canvas")
        assert box.get("hidden") is not None and box.find("canvas").get("aria-hidden") == "true"
        assert all(td.get("data-value") for td in table.find_all("td"))
    environment = page.by_id("chart-environment").find("tbody").find("tr")
    assert environment.get("data-colour") == "--env-production"


def test_attention_numbers_link_to_their_lists(client, login_as, inventory):
    login_as("viewer")
    page = parse(client.get("/").data)
    assert _stat(page, "stat-total") == ("6", "/assets")
    assert _stat(page, "stat-trash") == ("1", "/trash")
    assert _stat(page, "stat-stale") == ("1", "/assets?seen=stale")
    assert _stat(page, "stat-unverified") == ("2", "/assets?seen=unverified")
    assert _stat(page, "stat-unowned") == ("2", "/assets?environment=production&unowned=true")
    assert result_names(client.get("/assets?seen=stale").data) == ["legacy"]
    assert result_names(client.get("/assets?seen=unverified").data) == ["ledger", "reports"]
    assert result_names(client.get("/assets?environment=production&unowned=true").data) == [
        "cache", "ledger"]
    assert _stat(page, "open-conflicts") == ("0", "/conflicts")


def test_htmx_partial_is_the_dashboard_alone(client, login_as, inventory):
    login_as("viewer")
    response = client.get("/", headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert "HX-Request" in response.headers["Vary"]
    block = parse(html).by_id("dashboard")
    assert block is not None and block.find("h1").text == "Dashboard"
    assert all(block.find("figure", id=f"chart-{c}") is not None for c in CHARTS)
    assert _stat(parse(html), "stat-stale") == ("1", "/assets?seen=stale")


def test_full_page_loads_the_vendored_chart_library_without_inline_script(client, login_as, inventory):
    login_as("viewer")
    response = client.get("/")
    page = parse(response.data)
    sources = [s.get("src") for s in page.find_all("script")]
    assert "/static/vendor/chartjs-4.6.2/chart.umd.min.js" in sources
    assert "/static/js/charts.js" in sources
    # no inline script runs (the CSP forbids it); none is needed
    assert all(s.get("src") for s in page.find_all("script"))
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    library = client.get("/static/vendor/chartjs-4.6.2/chart.umd.min.js")
    assert library.status_code == 200 and b"Chart.js v4.6.2" in library.data
    library.close()


def test_empty_inventory_says_so_without_charts(client, login_as):
    login_as("viewer")
    page = parse(client.get("/").data)
    dashboard = page.by_id("dashboard")
    assert "The inventory is empty" in dashboard.text
    assert dashboard.find("figure") is None and page.by_id("stat-stale") is None
    assert _stat(page, "stat-total") == ("0", "/assets")
    assert "No imports yet." in dashboard.text and "No changes yet." in dashboard.text


# --- the list filters the numbers link to -------------------------------------------------------

def test_unverified_filter(client, session, login_as, inventory):
    login_as("viewer")
    assert result_names(client.get("/assets?unverified=true").data) == ["ledger", "reports"]
    assert result_names(client.get("/assets?unverified=false").data) == [
        "cache", "legacy", "orders", "retired"]
    # seen only once (first_seen_at) still counts as verified
    session.execute(update(Asset).where(Asset.id == inventory["ledger"].id).values(
        first_seen_at=utcnow()))
    session.commit()
    assert result_names(client.get("/assets?unverified=true").data) == ["reports"]
    form = parse(client.get("/assets?unverified=true").data).find("select", id="f-unverified")
    assert form.find("option", value="true").get("selected") is not None


def test_unowned_filter(client, session, login_as, inventory):
    login_as("viewer")
    assert result_names(client.get("/assets?unowned=true").data) == ["cache", "ledger", "reports"]
    assert result_names(client.get("/assets?unowned=false").data) == [
        "legacy", "orders", "retired"]
    # a blank owner is no owner
    session.execute(update(Asset).where(Asset.id == inventory["orders"].id).values(owner="  "))
    session.commit()
    assert "orders" in result_names(client.get("/assets?unowned=true").data)
    assert result_names(client.get("/assets?environment=production&unowned=true&sort=-name").data) == [
        "orders", "ledger", "cache"]


def test_new_filters_refuse_other_values(client, login_as):
    login_as("viewer")
    for name in ("unverified", "unowned"):
        response = client.get(f"/assets?{name}=maybe")
        assert "Use true or false" in response.get_data(as_text=True), name


def test_api_list_filters_unverified_and_unowned(client, make_token, inventory):
    token = make_token("viewer")

    def names(query: str) -> list[str]:
        response = client.get(f"/api/v1/assets?{query}", headers=token.headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [a["name"] for a in response.get_json()["items"]]

    assert names("unverified=true") == ["ledger", "reports"]
    assert names("unowned=true&environment=production") == ["cache", "ledger"]
    assert names("unowned=false&unverified=false") == ["legacy", "orders", "retired"]
    assert client.get("/api/v1/assets?unowned=maybe", headers=token.headers).status_code == 422


# --- policy panels -----------------------------------------------------------------------------

def test_policy_panels_show_compliance_the_most_failed_controls_and_the_trend(session, client, login_as):
    from webapp.services import policy_reports

    make_asset(session, name="plain-db", encrypted_at_rest=False, tls_required=True)
    make_asset(session, name="locked-db", encrypted_at_rest=True, tls_required=True)
    policy_reports.take_snapshot(session)
    login_as("viewer")
    page = parse(client.get("/").data)
    compliance = page.by_id("chart-compliance")
    assert compliance is not None and "SOC 2" in compliance.text
    failed = page.by_id("chart-most-failed")
    link = next(a for a in failed.find_all("a") if "policy=encryption.at_rest" in a.get("href"))
    assert link.text == "1"
    assert result_names(client.get(link.get("href")).data) == ["plain-db"]
    trend = page.by_id("chart-trend-compliance")
    assert trend is not None and trend.get("data-chart") == "line"


def test_no_policy_panels_before_any_result(session, client, login_as):
    login_as("viewer")
    page = parse(client.get("/").data)
    assert page.by_id("chart-compliance") is None


def test_admins_see_the_last_backup(app, client, login_as, session, tmp_path):
    viewer = app.test_client()
    login_as("viewer", test_client=viewer)
    seen = viewer.get("/")
    assert seen.status_code == 200 and b"Recent changes" in seen.data  # the viewer's dashboard
    assert parse(seen.data).by_id("last-backup") is None  # admins only
    login_as("admin")
    app.config["BACKUP_DIR"] = None
    assert "Off: BACKUP_DIR is not set." in parse(client.get("/").data).by_id("last-backup").text
    app.config["BACKUP_DIR"] = str(tmp_path / "backups")
    assert "No backup yet" in parse(client.get("/").data).by_id("last-backup").text
    run = scheduled_tasks.start(session, "backup", trigger="test")
    scheduled_tasks.execute(session, run.id, config=app.config)
    text = parse(client.get("/").data).by_id("last-backup").text
    assert "Last backup:" in text and "succeeded" in text and "Next:" in text
    assert any(unit in text for unit in ("kB", "Bytes", "MB"))  # its size
