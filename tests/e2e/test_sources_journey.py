"""A person reads who says what about an asset (SPEC §5, Sources tab), in a real browser: an
asset three sources reported, with long values, read at 1440 px and at 390 px without the page
growing sideways.

Screenshots go to test-artifacts/ (sources-*.png); any browser console error or server error
fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.e2e.test_journey import browser_page  # noqa: F401  (the shared browser fixture)
from tests.imports.helpers import assets, run_file

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HOST = "orders-primary-replica-set-member-0042.cluster-abcdefghijkl.eu-west-1.rds.amazonaws.com"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]


def seed(session) -> None:  # type: ignore[no-untyped-def]
    run_file(session, json.dumps({"DBInstances": [{
        "DBInstanceIdentifier": "orders-primary-replica-set-member-0042", "Engine": "postgres",
        "EngineVersion": "15.4", "DBInstanceArn":
            "arn:aws:rds:eu-west-1:123456789012:db:orders-primary-replica-set-member-0042",
        "Endpoint": {"Address": HOST, "Port": 5432}, "DBInstanceStatus": "available",
        "StorageEncrypted": True, "PubliclyAccessible": False, "BackupRetentionPeriod": 7,
        "TagList": [{"Key": "owner", "Value": "payments-platform-database-reliability-engineering"},
                    {"Key": "cost-centre", "Value": "CC-000123-payments-infrastructure-shared-services"}],
    }]}), "rds.json")
    run_file(session, (
        '<?xml version="1.0"?>\n<nmaprun scanner="nmap" args="nmap -sV" version="7.94">'
        '<host><status state="up"/><address addr="10.42.17.203" addrtype="ipv4"/>'
        f'<hostnames><hostname name="{HOST}" type="PTR"/></hostnames><ports>'
        '<port protocol="tcp" portid="5432"><state state="open"/>'
        '<service name="postgresql" product="PostgreSQL DB" version="15.5 (Debian 15.5-1.pgdg120+1)" '
        'method="probed" conf="10"/></port></ports></host></nmaprun>\n'), "scan.xml")
    run_file(session, "name,engine,version,host,port,owner,environment,criticality\n"
             f'"Orders primary (payments, EU)",postgresql,15,{HOST},5432,'
             "payments-platform-database-reliability-engineering@example.com,production,critical\n",
             "cmdb.csv")


def test_sources_tab_is_readable_wide_and_narrow(  # type: ignore[no-untyped-def]
    live_server: str, session, make_user, browser_page  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    page, problems = browser_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    seed(session)
    [asset] = assets(session)
    viewer = make_user("viewer", email="vera@example.com")
    try:
        page.goto(live_server + "/login")
        page.get_by_label("Email", exact=True).fill(viewer.email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(live_server + f"/assets/{asset.id}")
        page.get_by_role("link", name="Sources").click()
        expect(page.get_by_role("heading", name="Sources")).to_be_visible()
        version = page.locator("#source-engine_version")
        expect(version).to_contain_text("15.4")
        expect(version.locator("li.differs")).to_contain_text("nmap")
        # the CMDB's name wins (business field); the cloud's identifier is kept beside it
        expect(page.locator("#source-name")).to_contain_text("Orders primary (payments, EU)")
        expect(page.locator("#source-name li.differs")).to_contain_text("aws")
        page.screenshot(path=SHOTS / "sources-1440.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=SHOTS / "sources-390.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        # each field's parts stay readable: no cell squeezed to a few characters
        widths = page.evaluate("[...document.querySelectorAll('.sources-table td')].map(td => td.clientWidth)")
        assert min(widths) > 250
    finally:
        page.set_viewport_size({"width": 1440, "height": 900})
    assert problems == []
