"""The webhook pages in Chromium, checked by axe-core (WCAG 2.0–2.2 A and AA) at 1440 and 390 px,
and the journey an admin takes: register a webhook by keyboard and labels, copy the secret once,
send a test and watch its result appear without reloading."""

from __future__ import annotations

import re

import pytest

from tests import webhook_receiver
from tests.conftest import PASSWORD
from tests.e2e.conftest import htmx_settled
from tests.e2e.test_journey import browser_page  # noqa: F401  (the shared browser fixture)
from webapp.models.base import utcnow
from webapp.services import webhooks
from webapp.services.actor import Actor

WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
BLOCKING = {"serious", "critical"}


@pytest.fixture
def app_config(app_config):  # type: ignore[no-untyped-def]
    # the receiver is on 127.0.0.1; nothing is sent but by the test itself
    return {**app_config, "WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_TIMEOUT_SECONDS": 1.0,
            "WEBHOOK_SEND_ON_COMMIT": False}


def _blocking(axe, page) -> list[str]:  # type: ignore[no-untyped-def]
    violations = axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG}}).response["violations"]
    return [f"{v['id']} ({v['impact']}): {v['nodes'][0]['target'] if v['nodes'] else ''}"
            for v in violations if v["impact"] in BLOCKING]


def test_the_webhook_pages_are_accessible_and_the_journey_works(  # type: ignore[no-untyped-def]
    live_server, session, make_user, browser_page  # noqa: F811
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    page, problems = browser_page
    receiver = webhook_receiver.start(webhook_receiver.Receiver())
    try:
        make_user("admin", email="ada@example.com")
        hook, secret = webhooks.create(session, Actor.cli(), name="SIEM", url="https://93.184.215.14/x",
                                       kinds=["lockout"])
        webhooks.send_test(session, Actor.cli(), hook.id)
        webhooks.send_due(session, now=utcnow())  # an attempt that failed (nothing listens there)
        page.goto(live_server + "/login")
        page.get_by_label("Email").fill("ada@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(live_server + "/")
        axe = Axe()
        blocking: list[str] = []
        for width in (1440, 390):
            page.set_viewport_size({"width": width, "height": 900})
            for path in ("/admin/webhooks", "/admin/webhooks/new", f"/admin/webhooks/{hook.id}",
                         f"/admin/webhooks/{hook.id}/deliveries"):
                response = page.goto(live_server + path)
                assert response is not None and response.status == 200, path
                htmx_settled(page)
                blocking += [f"{width} {path}: {b}" for b in _blocking(axe, page)]
                assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0, path

        # register a webhook with the form's labels; a refused URL first
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(live_server + "/admin/webhooks")
        page.get_by_role("link", name="New webhook").click()
        page.get_by_label("Name").fill("Receiver")
        page.get_by_label("URL").fill("ftp://example.com/")
        page.get_by_label("An account was locked out").check()
        page.get_by_role("button", name="Save webhook").click()
        assert "Only http and https URLs" in page.content()
        blocking += [f"422 form: {b}" for b in _blocking(axe, page)]
        page.get_by_label("URL").fill(receiver.url("/ok"))
        page.get_by_role("button", name="Save webhook").click()
        page.get_by_text("Copy the secret now").wait_for()
        shown = page.locator("#secret-value").inner_text()
        assert shown.startswith("whsec_")
        blocking += [f"secret: {b}" for b in _blocking(axe, page)]
        receiver.secrets["/ok"] = shown

        # Send test: the deliveries page polls until the receiver has answered
        page.get_by_role("link", name="Deliveries and Send test").click()
        assert "Nothing delivered to this webhook yet" in page.content()
        page.get_by_role("button", name="Send test").click()
        page.get_by_text("Sending…").wait_for()
        webhooks.send_due(session, now=utcnow())  # what the webhooks job does meanwhile
        page.get_by_role("cell", name="ok").wait_for(timeout=5_000)
        assert re.search(r"badge-succeeded", page.content()) and "Sending…" not in page.content()
        [got] = receiver.at("/ok")
        assert got.event == "test" and got.signature_ok
        assert shown not in page.content()  # never shown again
        assert blocking == [], "\n".join(blocking)
        assert [p for p in problems if "422" not in p] == []  # the refused form's 422 is expected
    finally:
        webhook_receiver.shut(receiver)
