"""A reviewer works the review queue in a real browser (SPEC §5 `/conflicts`): opens it from the
navigation, moves through it with the keyboard, compares an item side by side, takes one
incoming value and merges with `m` (the next item loads in place, without a page load), skips
and dismisses with `j` and `d`, and bulk-dismisses the rest from the queue.

Screenshots go to test-artifacts/ (review-*.png); any browser console error (a CSP violation, a
failed script) or server error fails the test. Screenshots keep the text caret (`caret="initial"`):
hiding it, Playwright writes `style=""` on inputs, which htmx's settle then copies to the swapped
item's inputs, and the CSP (rightly) refuses that inline style.
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
from webapp.models import Asset, Conflict, ConflictStatus

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]


def test_reviewer_works_the_queue_with_the_keyboard(  # type: ignore[no-untyped-def]
    live_server: str, session, make_user, browser_page  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    page, problems = browser_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    run = make_run(session, source="dc1-scanner")
    orders = make_asset(session, name="orders-db", host="db1.dc1.example.com", owner=None,
                        environment="production", tags=["pci"])
    billing = make_asset(session, name="billing", host="10.0.4.12", port=5432)
    billing_old = make_asset(session, name="billing-old", host="billing.dc1.example.com", port=5432,
                             owner="finance-dba@example.com", tags=["legacy"])
    record = possible_duplicate(
        session, orders,
        {"name": "orders-db", "engine": "postgresql", "host": "orders.dc1.example.com",
         "port": 5432, "owner": "team-orders@example.com", "environment": "production",
         "engine_version": "15.4"},
        run=run, record_key="nmap:10.0.3.7:5432/tcp", confidence=0.83,
        reasons=["same database name", "name similarity 1.00", "same engine and port"],
        age=timedelta(hours=5))
    pair = duplicate_assets(session, billing, billing_old, confidence=0.71, age=timedelta(hours=2))
    fields = field_conflict(session, orders, {"environment": ["production", "staging"]}, run=run,
                            record_key="csv:14", age=timedelta(minutes=10))
    extra = [possible_duplicate(session, billing, {"name": f"billing-{i}", "engine": "postgresql"},
                                run=run, record_key=f"csv:{20 + i}", confidence=0.62,
                                age=timedelta(days=1, hours=i)) for i in range(2)]
    reviewer = make_user("reviewer", email="rev@example.com")

    def url(path: str) -> re.Pattern[str]:
        return re.compile(re.escape(live_server + path) + r"(\?.*)?$")

    try:
        page.goto(live_server + "/login")
        page.get_by_label("Email", exact=True).fill(reviewer.email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Review queue 5 open")).to_be_visible()
        expect(page.locator("#open-conflicts")).to_have_text("5 open conflicts in the review queue")

        nav.get_by_role("link", name=re.compile("^Review queue")).click()
        expect(page).to_have_url(url("/conflicts"))
        htmx_settled(page)
        expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
        expect(page.locator("#queue tbody tr")).to_have_count(5)
        expect(page.get_by_role("heading", name="Keyboard shortcuts")).to_be_visible()
        page.screenshot(path=SHOTS / "review-01-queue.png", full_page=True, caret="initial")

        # j moves to the first (newest) row, Enter opens it
        page.keyboard.press("j")
        page.keyboard.press("j")
        page.keyboard.press("k")
        expect(page.locator("#queue tbody tr.current")).to_have_count(1)
        page.keyboard.press("Enter")
        expect(page).to_have_url(url(f"/conflicts/{fields.id}"))
        expect(page.get_by_role("heading", name=re.compile("Field conflict"))).to_be_visible()
        htmx_settled(page)

        # j: the next item, in place
        page.evaluate("window.stillTheSamePage = true")
        page.keyboard.press("j")
        expect(page).to_have_url(url(f"/conflicts/{pair.id}"))
        expect(page.get_by_role("heading", name=re.compile("Duplicate assets"))).to_be_visible()
        htmx_settled(page)
        page.keyboard.press("j")
        expect(page).to_have_url(url(f"/conflicts/{record.id}"))
        expect(page.locator(".confidence")).to_have_text("83%")
        expect(page.locator("tr.differs")).to_have_count(3)  # host, owner, engine version
        htmx_settled(page)
        page.screenshot(path=SHOTS / "review-02-item.png", full_page=True, caret="initial")

        # take the incoming host, keep the rest as defaulted, and merge with m
        page.locator("#choice-host-incoming").check()
        expect(page.get_by_label("Take incoming").first).to_be_checked()
        page.keyboard.press("m")
        expect(page.locator("#flashes")).to_contain_text("Merged possible duplicate nmap:10.0.3.7:5432/tcp.")
        expect(page).to_have_url(url(f"/conflicts/{extra[0].id}"))
        expect(nav.get_by_role("link", name="Review queue 4 open")).to_be_visible()
        assert page.evaluate("window.stillTheSamePage") is True  # no page load: htmx swapped it
        page.screenshot(path=SHOTS / "review-03-next-item.png", full_page=True, caret="initial")
        htmx_settled(page)

        # d dismisses this one; typing in a field is not a shortcut
        page.keyboard.press("d")
        expect(page).to_have_url(url(f"/conflicts/{extra[1].id}"))
        expect(nav.get_by_role("link", name="Review queue 3 open")).to_be_visible()

        # the rest from the queue: select two, bulk dismiss
        nav.get_by_role("link", name=re.compile("^Review queue")).click()
        expect(page.locator("#queue tbody tr")).to_have_count(3)
        page.get_by_label("Select field conflict csv:14").check()
        page.get_by_label("Select possible duplicate csv:21").check()
        expect(page.locator("[data-selected-count]")).to_have_text("2 selected")
        # a d typed into a field is text, not "Dismiss selected"
        box = page.get_by_label("Import", exact=True)
        box.press_sequentially("d")
        expect(box).to_have_value("d")
        box.press("Backspace")
        expect(page.locator("#queue tbody tr")).to_have_count(3)
        expect(page.locator("[data-selected-count]")).to_have_text("2 selected")
        page.screenshot(path=SHOTS / "review-04-selected.png", full_page=True, caret="initial")
        page.get_by_role("button", name="Dismiss selected").click()
        # more than one item: a confirmation first
        expect(page.get_by_role("heading", name="Dismiss 2 items?")).to_be_visible()
        page.get_by_role("button", name="Dismiss 2 items").click()
        expect(page.locator("#undo-flash")).to_contain_text("Resolved 2 items (dismissed).")
        expect(page.locator("#queue tbody tr")).to_have_count(1)
        expect(nav.get_by_role("link", name="Review queue 1 open")).to_be_visible()
        page.screenshot(path=SHOTS / "review-05-after-bulk.png", full_page=True, caret="initial")
    finally:
        page.screenshot(path=SHOTS / "review-last.png", full_page=True, caret="initial")

    session.expire_all()
    assert session.get(Asset, orders.id).host == "orders.dc1.example.com"
    assert session.get(Asset, orders.id).owner == "team-orders@example.com"
    assert session.get(Conflict, record.id).status == ConflictStatus.merged
    assert session.get(Conflict, extra[0].id).status == ConflictStatus.dismissed
    assert session.get(Conflict, pair.id).status == ConflictStatus.open
    assert problems == []
