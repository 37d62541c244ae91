"""A reviewer clears the review queue from the keyboard (SPEC §5 `/conflicts`, issue 17): reads
each item's differing values in the list, selects three items with `x`, `j` and `Shift+x`,
dismisses them with `d`, confirms, sees them gone, presses Undo and sees them back. `?` folds
and unfolds the shortcuts' help.

Screenshots at 1440 px and 390 px, with long names, go to test-artifacts/ (review-keys-*.png);
any console error (a CSP violation), page error or server error fails the test.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import htmx_settled
from tests.e2e.test_journey import browser_page  # noqa: F401  (the shared browser fixture)
from tests.factories import make_asset
from tests.review_factories import duplicate_assets, field_conflict, make_run, possible_duplicate
from webapp.models import Conflict, ConflictStatus

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]

LONG = "customer-billing-and-invoicing-postgresql-primary-eu-west-1"


def test_reviewer_selects_three_with_the_keyboard_dismisses_and_undoes(  # type: ignore[no-untyped-def]
    live_server: str, session, make_user, browser_page  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    page, problems = browser_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    run = make_run(session, source="servicenow-cmdb-weekly-export")
    billing = make_asset(session, name=LONG, host="billing-pg-primary.eu-west-1.rds.internal.example.com",
                         owner=None, environment="production", tags=["pci", "team=payments"])
    replica = make_asset(session, name=f"{LONG}-replica", host="billing-pg-replica-2.eu-west-1.rds.internal.example.com",
                         owner="payments-platform-dba@example.com", environment="production")
    orders = make_asset(session, name="orders-mysql-legacy-datacenter-frankfurt-rack-12", host="10.20.30.40",
                        port=3306, engine="mysql", owner="dba-frankfurt@example.com")
    items = [
        possible_duplicate(
            session, billing,
            {"name": LONG, "engine": "postgresql", "host": "billing-pg-primary-new.eu-west-1.rds.internal.example.com",
             "port": 5432, "owner": "payments-platform-dba@example.com", "environment": "staging"},
            run=run, record_key=f"aws_rds:arn:aws:rds:eu-west-1:123456789012:db:{LONG}",
            confidence=0.84, reasons=["same database name", "name similarity 0.97", "same engine family"],
            age=timedelta(hours=6)),
        duplicate_assets(session, billing, replica, confidence=0.72, age=timedelta(hours=5)),
        field_conflict(session, orders, {"owner": ["dba-frankfurt@example.com", "platform-team@example.com"],
                                         "environment": ["production", "staging"]},
                       run=run, record_key="csv:1842", age=timedelta(hours=4)),
        possible_duplicate(session, orders, {"name": "orders-mysql-legacy", "engine": "mysql",
                                             "host": "orders-legacy.fra.example.com", "port": 3306},
                           run=run, record_key="csv:17", confidence=0.66, age=timedelta(hours=3)),
        possible_duplicate(session, orders, {"name": "orders-mysql-legacy-2", "engine": "mysql",
                                             "host": "10.20.30.41", "port": 3306},
                           run=run, record_key="csv:18", confidence=0.61, age=timedelta(hours=2)),
    ]
    # queue order: newest first
    newest_first = list(reversed(items))
    reviewer = make_user("reviewer", email="reviewer-with-a-long-address@example.com")

    def url(path: str) -> re.Pattern[str]:
        return re.compile(re.escape(live_server + path) + r"(\?.*)?$")

    rows = page.locator("#queue tbody tr")
    try:
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(live_server + "/login")
        page.get_by_label("Email", exact=True).fill(reviewer.email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(live_server + "/conflicts")
        htmx_settled(page)
        expect(rows).to_have_count(5)
        # each row says what differs, so most items are decided without opening them
        expect(rows.nth(2).locator("td.diffs")).to_contain_text("Owner: dba-frankfurt@example.com → platform-team@example.com")
        page.screenshot(path=SHOTS / "review-keys-1440-queue.png", full_page=True, caret="initial")

        # ? folds the help, ? unfolds it
        help_ = page.locator("#shortcuts")
        expect(help_).to_have_attribute("open", "")
        page.keyboard.press("?")
        expect(help_).not_to_have_attribute("open", "")
        page.keyboard.press("?")
        expect(help_).to_have_attribute("open", "")

        # j to the first row, x selects it, j j to the third, Shift+x selects the range
        page.keyboard.press("j")
        page.keyboard.press("x")
        expect(page.locator("[data-selected-count]")).to_have_text("1 selected")
        page.keyboard.press("j")
        page.keyboard.press("j")
        page.keyboard.press("Shift+X")
        expect(page.locator("[data-selected-count]")).to_have_text("3 selected")
        for i in range(3):
            expect(rows.nth(i).locator('input[name="ids"]')).to_be_checked()
        expect(rows.nth(3).locator('input[name="ids"]')).not_to_be_checked()
        page.screenshot(path=SHOTS / "review-keys-1440-selected.png", full_page=True, caret="initial")

        # d: Dismiss selected, then the confirmation (the button has the focus: Enter)
        # a key typed into a field is text, not a shortcut
        box = page.get_by_label("Import", exact=True)
        box.press_sequentially("d")
        expect(box).to_have_value("d")
        box.press("Backspace")
        expect(page.locator("[data-selected-count]")).to_have_text("3 selected")
        expect(rows).to_have_count(5)
        rows.nth(2).locator("a[data-row-link]").focus()
        page.keyboard.press("d")
        expect(page.get_by_role("heading", name="Dismiss 3 items?")).to_be_visible()
        confirm = page.get_by_role("button", name="Dismiss 3 items")
        expect(confirm).to_be_focused()
        page.screenshot(path=SHOTS / "review-keys-1440-confirm.png", full_page=True, caret="initial")
        page.keyboard.press("Enter")
        expect(page).to_have_url(url("/conflicts"))
        expect(page.locator("#undo-flash")).to_contain_text("Resolved 3 items (dismissed).")
        expect(rows).to_have_count(2)
        for item in newest_first[:3]:
            expect(page.locator(f'input[value="{item.id}"]')).to_have_count(0)
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Review queue 2 open")).to_be_visible()
        page.screenshot(path=SHOTS / "review-keys-1440-resolved.png", full_page=True, caret="initial")

        # Undo: the three are back
        page.get_by_role("button", name="Undo").click()
        expect(page.locator("#flashes")).to_contain_text("Undone: 3 items are open again.")
        expect(rows).to_have_count(5)
        for item in newest_first[:3]:
            expect(page.locator(f'input[value="{item.id}"]')).to_have_count(1)
        expect(nav.get_by_role("link", name="Review queue 5 open")).to_be_visible()

        # the narrow screen: the queue, an item, the confirmation
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(live_server + "/conflicts")
        htmx_settled(page)
        page.screenshot(path=SHOTS / "review-keys-390-queue.png", full_page=True, caret="initial")
        page.goto(live_server + f"/conflicts/{items[0].id}")
        page.screenshot(path=SHOTS / "review-keys-390-item.png", full_page=True, caret="initial")
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(live_server + f"/conflicts/{items[0].id}")
        page.screenshot(path=SHOTS / "review-keys-1440-item.png", full_page=True, caret="initial")
    finally:
        page.screenshot(path=SHOTS / "review-keys-last.png", full_page=True, caret="initial")

    session.expire_all()
    assert [session.get(Conflict, c.id).status for c in items] == [ConflictStatus.open] * 5
    assert problems == []
