"""An analyst imports a discovery file in a real browser (SPEC §5 `/imports`, §6): drops it on the
upload form, watches the run's progress bar reach 100 % without reloading the page, opens an
asset the import created, and sees on its page which import saw it.

Imports run on a thread in the live server (REDIS_URL None) in small batches, so the progress
moves in steps. Screenshots go to test-artifacts/ (import-*.png); any browser console error (a CSP
violation, a failed script) or server error fails the test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import htmx_settled
from tests.e2e.test_journey import browser_page  # noqa: F401  (the shared browser fixture)
from webapp import jobs

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # as the other journey
RECORDS = 400
BATCH = 50

pytestmark = [
    pytest.mark.browser,
    # as in test_journey: Werkzeug's dev server may drop a static file the browser stopped reading
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]


@pytest.fixture
def app_config(app_config: dict[str, object]) -> dict[str, object]:
    """The live server runs imports on a thread, 50 records per batch."""
    return {**app_config, "REDIS_URL": None, "IMPORT_BATCH_SIZE": BATCH}


def discovery_file(path: Path, n: int) -> Path:
    assets = [
        {"name": f"scan-db-{i:04d}", "engine": "postgresql" if i % 2 else "mysql",
         "host": f"db{i}.dc1.example.com", "port": 5432 if i % 2 else 3306,
         "environment": "production" if i % 5 == 0 else "staging", "owner": "team-data"}
        for i in range(1, n + 1)
    ]
    path.write_text(json.dumps({"source": "dc1-scanner", "generated_at": "2026-01-05T10:00:00Z",
                                "assets": assets}))
    return path


def test_analyst_uploads_watches_progress_and_opens_a_created_asset(  # type: ignore[no-untyped-def]
    live_server: str, make_user, browser_page, tmp_path: Path  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    page, problems = browser_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    upload = discovery_file(tmp_path / "dc1-databases.json", RECORDS)
    analyst = make_user("analyst", email="ana@example.com")

    try:
        page.goto(live_server + "/login")
        page.get_by_label("Email", exact=True).fill(analyst.email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        expect(page.get_by_text("No imports yet.")).to_be_visible()

        page.get_by_role("navigation", name="Main").get_by_role("link", name="Imports").click()
        expect(page).to_have_url(live_server + "/imports")
        expect(page.get_by_role("heading", name="Imports", exact=True)).to_be_visible()
        expect(page.get_by_text("No imports yet.")).to_be_visible()

        # Drop the file on the drop zone, as a person dragging it from their file manager.
        dropped = page.evaluate_handle(
            """([name, text]) => {
                const dt = new DataTransfer();
                dt.items.add(new File([text], name, {type: "application/json"}));
                return dt;
            }""",
            [upload.name, upload.read_text()],
        )
        page.dispatch_event("[data-drop-zone]", "drop", {"dataTransfer": dropped})
        expect(page.get_by_text(re.compile(r"^Chosen: dc1-databases\.json \(\d"))).to_be_visible()
        file_input = page.get_by_label("Discovery file", exact=True)
        assert file_input.evaluate("el => el.files.length") == 1
        page.get_by_label("Source", exact=True).fill("dc1-scanner")
        page.screenshot(path=SHOTS / "import-01-upload-form.png", full_page=True)
        page.get_by_role("button", name="Upload").click()

        # The run's page: the progress block polls itself until the run is finished.
        expect(page).to_have_url(re.compile(re.escape(live_server) + r"/imports/[0-9a-f-]{36}$"))
        run_url = page.url
        expect(page.get_by_role("heading", name="Import #1")).to_be_visible()
        expect(page.get_by_text("Import #1 of “dc1-databases.json” queued (inventory-json).")).to_be_visible()
        page.evaluate("window.__sameDocument = true")
        progress = page.locator("#progress")
        if progress.get_attribute("hx-trigger"):  # usually: the run is still going
            page.screenshot(path=SHOTS / "import-02-run-in-progress.png")
        expect(progress.locator("progress")).to_have_attribute("value", "100", timeout=60_000)
        expect(progress.locator(".status-text")).to_have_text("succeeded")
        expect(progress.get_by_text(f"{RECORDS} of {RECORDS} records")).to_be_visible()
        expect(progress.locator(".outcome-created dd")).to_have_text(str(RECORDS))
        expect(progress.get_by_role("button", name="Run again")).to_be_visible()
        expect(progress).not_to_have_attribute("hx-trigger", re.compile(".*"))
        # the records section reloaded itself when the run finished
        records = page.locator("#records")
        expect(records.get_by_role("row")).to_have_count(101)  # header + the first 100
        expect(records.get_by_role("link", name="Next records")).to_be_visible()
        assert page.evaluate("window.__sameDocument") is True, "the page reloaded to show progress"
        page.screenshot(path=SHOTS / "import-03-run.png")

        # Filter the records: only failed ones (there are none).
        htmx_settled(page)
        records.get_by_label("Outcome", exact=True).select_option("failed")
        expect(page.locator("#records").get_by_text("No failed records")).to_be_visible()
        expect(page).to_have_url(run_url + "?outcome=failed")
        htmx_settled(page)  # the swapped-in select listens only once htmx has settled it
        page.locator("#records").get_by_label("Outcome", exact=True).select_option("created")
        expect(page.locator("#records").get_by_role("row")).to_have_count(101)

        # The list of runs.
        page.get_by_role("link", name="Imports", exact=True).first.click()
        expect(page).to_have_url(live_server + "/imports")
        row = page.locator("#runs").get_by_role("row").filter(has=page.get_by_role("link", name="#1"))
        expect(row).to_contain_text("dc1-databases.json")
        expect(row).to_contain_text("succeeded")
        expect(row).to_contain_text(f"{RECORDS} created")
        page.screenshot(path=SHOTS / "import-04-runs.png", full_page=True)

        # Open an asset the import created; its page says which import saw it, and how.
        page.goto(run_url)
        first = page.locator("#records").get_by_role("row").filter(
            has=page.get_by_role("cell", name="json:1", exact=True))
        first.get_by_role("link", name="scan-db-0001").click()  # the asset, by its name
        expect(page.get_by_role("heading", name="scan-db-0001")).to_be_visible()
        sightings = page.locator("#sightings")
        expect(sightings.get_by_role("heading", name="Sightings")).to_be_visible()
        sighting = sightings.get_by_role("row").filter(has=page.get_by_role("link", name="Import #1"))
        expect(sighting).to_have_count(1)
        expect(sighting).to_contain_text("dc1-scanner")
        expect(sighting).to_contain_text("json:1")
        expect(sighting).to_contain_text("created")
        sightings.scroll_into_view_if_needed()
        page.screenshot(path=SHOTS / "import-05-asset-sightings.png", full_page=True)
        sighting.get_by_role("link", name="Import #1").click()
        expect(page).to_have_url(run_url)

        # The dashboard lists it among recent imports.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
        recent = page.locator("table.recent-imports")
        expect(recent.get_by_role("link", name="#1")).to_be_visible()
        page.screenshot(path=SHOTS / "import-06-dashboard.png", full_page=True)

        # Run it again: the same file a second time changes nothing.
        recent.get_by_role("link", name="#1").click()
        expect(page).to_have_url(run_url)
        page.get_by_role("button", name="Run again").click()
        expect(page.get_by_role("heading", name="Import #2")).to_be_visible()
        progress = page.locator("#progress")
        expect(progress.locator(".status-text")).to_have_text("succeeded", timeout=60_000)
        expect(progress.locator(".outcome-unchanged dd")).to_have_text(str(RECORDS))
        expect(progress.locator(".outcome-created dd")).to_have_text("0")
    finally:
        jobs.wait_for_threads()

    assert not problems, "the browser reported errors:\n" + "\n".join(problems)
