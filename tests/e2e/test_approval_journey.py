"""Four-eyes approval in a real browser (SPEC §5): an analyst edits a critical production asset
and is told the change waits for approval; a reviewer follows "1 change waiting for approval"
from the asset page to the diff and approves it."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.e2e.test_journey import browser_page  # noqa: F401  (the shared browser fixture)
from tests.factories import make_asset

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]


def test_analyst_proposes_reviewer_approves(  # type: ignore[no-untyped-def]
    live_server: str, session, make_user, browser_page  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    page, problems = browser_page
    asset = make_asset(session, name="payments-db", environment="production", criticality="critical",
                       owner="team-a@example.com")
    analyst = make_user("analyst", email="ana@example.com")
    reviewer = make_user("reviewer", email="rev@example.com")

    def sign_in(user) -> None:  # type: ignore[no-untyped-def]
        page.goto(live_server + "/login")
        page.get_by_label("Email", exact=True).fill(user.email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    sign_in(analyst)
    page.goto(f"{live_server}/assets/{asset.id}/edit")
    page.get_by_label("Owner", exact=True).fill("team-b@example.com")
    page.get_by_role("button", name="Save asset").click()
    expect(page.get_by_text("your change was saved as a proposal")).to_be_visible()
    expect(page.get_by_role("link", name="1 change waiting for approval")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()

    sign_in(reviewer)
    page.goto(f"{live_server}/assets/{asset.id}")
    page.get_by_role("link", name="1 change waiting for approval").click()
    expect(page.get_by_role("heading", name="Proposed change to payments-db")).to_be_visible()
    expect(page.locator(".diff-incoming")).to_have_text("team-b@example.com")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Approved: the change is applied")).to_be_visible()
    page.goto(f"{live_server}/assets/{asset.id}")
    expect(page.get_by_text("team-b@example.com")).to_be_visible()
    expect(page.get_by_role("link", name="1 change waiting for approval")).to_have_count(0)
    assert problems == []
