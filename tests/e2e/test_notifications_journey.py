"""An analyst's import fails and the bell says so, in a real browser (SPEC §13): upload a broken
nmap file, the bell shows 1, open it, read the notification, land on the run's page; the bell is
empty again. Screenshots of the bell and /notifications at 1440 and 390 px wide go to
test-artifacts/ (notifications-*.png); any console error (a CSP violation) or server error fails.

The live server has no Redis (REDIS_URL None): the import runs on a thread, and its final commit
kicks the outbox dispatcher on another.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import htmx_settled
from tests.e2e.test_journey import browser_page  # noqa: F401  (the shared browser fixture)
from tests.imports.helpers import FIXTURES
from webapp import jobs

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]


@pytest.fixture
def app_config(app_config: dict[str, object]) -> dict[str, object]:
    return {**app_config, "REDIS_URL": None}


def test_a_failed_import_rings_the_bell_and_leads_to_its_run(  # type: ignore[no-untyped-def]
    live_server: str, make_user, browser_page  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    page, problems = browser_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    analyst = make_user("analyst", email="ana@example.com")
    try:
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(live_server + "/login")
        page.get_by_label("Email", exact=True).fill(analyst.email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        bell = page.locator("#notification-bell")
        expect(bell).to_have_accessible_name("Notifications: 0 unread")
        expect(bell.locator(".bell-count")).to_have_count(0)

        # an import of a broken file: it fails while running
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Imports").click()
        page.get_by_label("Discovery file", exact=True).set_input_files(str(FIXTURES / "nmap_truncated.xml"))
        page.get_by_role("button", name="Upload").click()
        expect(page).to_have_url(re.compile(re.escape(live_server) + r"/imports/[0-9a-f-]{36}$"))
        run_url = page.url
        expect(page.locator("#progress .status-text")).to_have_text("failed", timeout=30_000)
        jobs.wait_for_threads()  # the import's thread, and the dispatcher its last commit kicked

        # the next page shows the bell with 1
        page.goto(live_server + "/imports")
        deadline = time.monotonic() + 10
        while bell.get_attribute("class") != "bell has-unread" and time.monotonic() < deadline:
            page.reload()
        expect(bell).to_have_accessible_name("Notifications: 1 unread")
        expect(bell.locator(".bell-count")).to_have_text("1")
        page.screenshot(path=SHOTS / "notifications-01-bell-1440.png")

        bell.click()
        expect(page).to_have_url(live_server + "/notifications")
        expect(page.get_by_role("heading", name="Notifications", exact=True)).to_be_visible()
        item = page.locator("li.notification.unread")
        expect(item).to_have_count(1)
        expect(item).to_contain_text("Import #1 (nmap_truncated.xml) failed")
        expect(item).to_contain_text("An import failed")
        page.screenshot(path=SHOTS / "notifications-02-list-1440.png", full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        htmx_settled(page)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), \
            "the notifications page overflows at 390 px"
        page.screenshot(path=SHOTS / "notifications-03-list-390.png", full_page=True)
        page.set_viewport_size({"width": 1440, "height": 900})

        # open it: the run's page, the notification read, the bell empty
        item.get_by_role("link", name="Import #1 (nmap_truncated.xml) failed").click()
        expect(page).to_have_url(run_url)
        expect(page.get_by_role("heading", name="Import #1")).to_be_visible()
        expect(bell).to_have_accessible_name("Notifications: 0 unread")
        page.goto(live_server + "/notifications?show=unread")
        expect(page.get_by_text("No notifications match this filter.")).to_be_visible()
        page.screenshot(path=SHOTS / "notifications-04-read-1440.png")
        assert problems == []
    finally:
        jobs.wait_for_threads()
