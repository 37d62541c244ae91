"""An analyst finds and takes data out, in a real browser (SPEC §5): the header search finds an
asset by part of its host and the keyboard opens it; the filtered list is exported as CSV and the
downloaded file holds exactly the rows shown, formula-safe, with a byte-order mark; the list's
rows per page and columns are set once and kept; the owner filter suggests the owners that exist.

Screenshots go to test-artifacts/ (analyst-*.png); any browser console error (a CSP violation,
a failed script) or server error fails the test.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import htmx_settled
from tests.e2e.test_journey import browser_page  # noqa: F401  (the shared browser fixture)
from tests.factories import make_asset

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]


def test_analyst_finds_exports_and_arranges_the_inventory(  # type: ignore[no-untyped-def]
    live_server: str, session, make_user, browser_page  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    page, problems = browser_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    for n in range(3):
        make_asset(session, name=f"payments-ledger-{n}", engine="mysql", host=f"ledger{n}.db.internal",
                   port=3306, owner="payments-dba@example.com", tags=["pci", "tier1"])
    make_asset(session, name="=HYPERLINK(\"http://evil\")", engine="mysql", owner="mallory@example.com")
    make_asset(session, name="orders-primary", engine="postgresql", host="orders.db.internal",
               port=5432, owner="orders-team@example.com")
    analyst = make_user("analyst", email="ana@example.com")

    try:
        page.goto(live_server + "/login")
        page.get_by_label("Email", exact=True).fill(analyst.email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("searchbox", name="Find anything")).to_be_visible()

        # header search: part of a host finds the asset; arrow down, Enter opens it
        page.get_by_role("searchbox", name="Find anything").fill("orders.db")
        results = page.locator("#quick-results")
        expect(results.get_by_role("heading", name="Assets")).to_be_visible()
        expect(results.get_by_role("link", name="orders-primary")).to_be_visible()
        page.screenshot(path=SHOTS / "analyst-1-search.png")
        page.keyboard.press("ArrowDown")
        expect(results.get_by_role("link", name="orders-primary")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="orders-primary")).to_be_visible()

        # the filtered list, exported as CSV: the downloaded file is the rows shown
        page.goto(live_server + "/assets?engine=mysql&sort=-name")
        htmx_settled(page)
        shown = page.locator("#results td.cell-name a.truncate").all_inner_texts()
        assert len(shown) == 4
        with page.expect_download() as download_info:
            page.get_by_role("link", name="Export CSV").click()
        download = download_info.value
        assert download.suggested_filename.endswith(".csv")
        raw = Path(download.path()).read_bytes()
        assert raw.startswith(codecs.BOM_UTF8)
        rows = list(csv.DictReader(io.StringIO(raw[len(codecs.BOM_UTF8):].decode())))
        assert [r["name"] for r in rows] == ["'" + n if n.startswith("=") else n for n in shown]
        assert {r["engine"] for r in rows} == {"mysql"}
        ledger = next(r for r in rows if r["name"] == "payments-ledger-2")
        assert ledger["tags"] == "pci; tier1" and ledger["host"] == "ledger2.db.internal"
        assert "connection_string" not in rows[0] and "has_connection_string" in rows[0]

        # rows and columns: chosen once, kept for the next visit
        page.get_by_text("Rows and columns").click()
        page.get_by_label("Rows per page").select_option("25")
        columns = page.locator(".display-columns")
        columns.get_by_role("checkbox", name="Host", exact=True).uncheck()
        columns.get_by_role("checkbox", name="Region", exact=True).check()
        columns.get_by_role("checkbox", name="Data classification", exact=True).check()
        page.screenshot(path=SHOTS / "analyst-2-columns.png", full_page=True)
        page.get_by_role("button", name="Save for me").click()
        expect(page.locator(".flash")).to_contain_text("List display saved")
        headers = page.locator("#results thead th:not(.select)")
        expect(headers).to_have_text(["Name ▼", "Engine", "Region", "Environment", "Status",
                                      "Criticality", "Owner", "Data classification", "Updated"])
        assert "engine=mysql" in page.url  # back to the same filter
        page.goto(live_server + "/assets")
        htmx_settled(page)
        expect(headers.nth(2)).to_have_text("Region")

        # owner suggestions as one types
        page.get_by_role("combobox", name="Owner").press_sequentially("pay")
        expect(page.locator("#owner-options option")).to_have_count(1)
        expect(page.locator("#owner-options option")).to_have_attribute(
            "value", "payments-dba@example.com")
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=SHOTS / "analyst-3-narrow.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    finally:
        page.set_viewport_size({"width": 1440, "height": 900})
    assert problems == []
