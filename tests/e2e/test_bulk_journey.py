"""An analyst changes many assets at once in a real browser (SPEC §5): filters the inventory,
chooses "Select all N matching this filter" and an action (only its value field shows), reads
the preview, applies it, sees the change set, undoes it; then ticks two rows with "Select all on
this page" unticked again and moves one asset to the trash and back.

Screenshots go to test-artifacts/ (bulk-*.png); any browser console error (a CSP violation, a
failed script) or server error fails the test.
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
from webapp.models import Asset

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]


def test_analyst_changes_every_asset_matching_a_filter_then_undoes_it(  # type: ignore[no-untyped-def]
    live_server: str, session, make_user, browser_page  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    page, problems = browser_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    for n in range(4):
        make_asset(session, name=f"billing-db-{n}", environment="staging", owner="team-billing")
    other = make_asset(session, name="orders-db", environment="staging", owner="team-orders")
    analyst = make_user("analyst", email="ana@example.com")

    def owners() -> dict[str, str | None]:
        session.expire_all()
        return dict(session.execute(select(Asset.name, Asset.owner)).tuples().all())

    try:
        page.goto(live_server + "/login")
        page.get_by_label("Email", exact=True).fill(analyst.email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(live_server + "/assets?q=billing")
        htmx_settled(page)
        expect(page.get_by_label("Select all on this page")).to_be_visible()

        # "all N matching this filter", an owner: only the owner's field shows
        page.get_by_label("Select all 4 matching this filter").check()
        page.get_by_label("Action", exact=True).select_option(label="Set owner")
        expect(page.get_by_label("New environment")).to_be_hidden()
        page.get_by_label("New owner").fill("dba@example.com")
        page.screenshot(path=SHOTS / "bulk-1-selected.png", full_page=True)
        page.get_by_role("button", name="Preview change").click()

        expect(page.get_by_role("heading", name="Preview of a bulk change")).to_be_visible()
        expect(page.locator("#preview")).to_contain_text("Will change")
        expect(page.locator("table.sample")).to_contain_text("billing-db-0")
        page.screenshot(path=SHOTS / "bulk-2-preview.png", full_page=True)
        assert set(owners().values()) == {"team-billing", "team-orders"}  # nothing yet

        page.get_by_role("button", name="Apply this change").click()
        expect(page.get_by_role("heading", name="Change set #1")).to_be_visible()
        expect(page.locator("#progress")).to_contain_text("succeeded")
        expect(page.locator("#progress progress")).to_have_attribute("value", "100")
        page.screenshot(path=SHOTS / "bulk-3-applied.png", full_page=True)
        assert {k: v for k, v in owners().items() if k.startswith("billing")} == {
            f"billing-db-{n}": "dba@example.com" for n in range(4)}
        assert owners()["orders-db"] == "team-orders"

        page.get_by_role("button", name="Undo this change").click()
        expect(page.get_by_role("heading", name="Change set #2")).to_be_visible()
        expect(page.locator("dl.facts")).to_contain_text("Undo of change set #1")
        page.screenshot(path=SHOTS / "bulk-4-undone.png", full_page=True)
        assert set(owners().values()) == {"team-billing", "team-orders"}

        # rows by hand: all on the page, then one unticked; to the trash
        page.goto(live_server + "/assets?q=db")
        htmx_settled(page)
        page.get_by_label("Select all on this page").check()
        expect(page.locator('input[name="ids"]:checked')).to_have_count(5)
        page.get_by_label(re.compile("^Select orders-db$")).uncheck()
        expect(page.get_by_label("Select all on this page")).not_to_be_checked()
        page.get_by_label("Action", exact=True).select_option(label="Move to the trash")
        page.get_by_role("button", name="Preview change").click()
        expect(page.locator("#preview")).to_contain_text("In the trash")
        page.get_by_role("button", name="Apply this change").click()
        expect(page.locator("#progress")).to_contain_text("succeeded")
        session.expire_all()
        assert session.get(Asset, other.id).deleted_at is None
        assert len(session.scalars(select(Asset).where(Asset.deleted_at.is_not(None))).all()) == 4
    finally:
        page.screenshot(path=SHOTS / "bulk-last.png", full_page=True)
    assert problems == []
