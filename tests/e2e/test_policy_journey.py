"""A reviewer follows a failing control from the dashboard to an exception, in a real browser
(SPEC §12): the dashboard's most failed controls → the assets failing one → an asset's Policy
tab → grant an exception → /policy counts it as excepted, and the dashboard's count drops.

Screenshots go to test-artifacts/ (policy-*.png); any browser console error (a CSP violation,
a failed script) or server error fails the test.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import htmx_settled
from tests.e2e.test_journey import browser_page  # noqa: F401  (the shared browser fixture)
from tests.factories import make_asset
from webapp.services import policy_reports

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]


def test_reviewer_follows_a_failing_control_to_an_exception(  # type: ignore[no-untyped-def]
    live_server: str, session, make_user, browser_page  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    page, problems = browser_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    for n in range(3):
        make_asset(session, name=f"payments-ledger-primary-eu-west-1-{n}", encrypted_at_rest=False,
                   tls_required=True, criticality="high", data_classification="restricted",
                   backup_retention_days=3, tags=["pci", "tier1", "team=payments", "gdpr"])
    for n in range(4):
        make_asset(session, name=f"orders-{n}", encrypted_at_rest=True, tls_required=n % 2 == 0,
                   environment="staging")
    policy_reports.take_snapshot(session)
    reviewer = make_user("reviewer", email="rita@example.com")

    page.goto(live_server + "/login")
    page.get_by_label("Email", exact=True).fill(reviewer.email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # the dashboard: the most failed controls, drawn and tabulated
    failed = page.locator("#chart-most-failed")
    expect(failed).to_be_visible()
    expect(page.locator("#chart-compliance canvas")).to_be_visible()
    page.screenshot(path=SHOTS / "policy-1-dashboard.png", full_page=True)
    failed.get_by_role("link", name="3").first.click()  # the table's count for the top control
    htmx_settled(page)
    assert "policy_status=fail" in page.url
    rows = page.locator("#results td.cell-name a.truncate")
    expect(rows).to_have_count(3)
    page.screenshot(path=SHOTS / "policy-2-failing.png", full_page=True)

    # one of them: its Policy tab, failures first, then an exception for encryption at rest
    rows.first.click()
    page.get_by_role("link", name="Policy", exact=True).last.click()
    table = page.locator("table.policy-results")
    expect(table).to_contain_text("Encrypted at rest")
    row = page.locator("#control-encryption-at_rest")
    expect(row).to_contain_text("fail")
    row.get_by_text("Grant an exception").click()
    row.get_by_label("Reason").fill("Legacy storage; the Q3 migration encrypts it.")
    row.get_by_label("Until").fill((date.today() + timedelta(days=90)).isoformat())
    page.screenshot(path=SHOTS / "policy-3-tab.png", full_page=True)
    row.get_by_role("button", name="Grant exception").click()
    expect(page.locator(".flash")).to_contain_text("Exception granted")
    expect(page.locator("#control-encryption-at_rest")).to_contain_text("excepted")

    # /policy counts it as excepted; the failing count went down by one
    page.goto(live_server + "/policy")
    soc2 = page.locator("#framework-soc2 tr", has_text="Encrypted at rest")
    expect(soc2.locator("td").nth(3)).to_have_text("2")  # fail
    expect(soc2.locator("td").nth(5)).to_have_text("1")  # excepted
    page.screenshot(path=SHOTS / "policy-4-policy.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server + "/")
    page.screenshot(path=SHOTS / "policy-5-dashboard-narrow.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.set_viewport_size({"width": 1280, "height": 800})
    assert problems == []
