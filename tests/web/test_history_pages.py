"""An asset's History tab: the newest 50 events first, older on demand (SPEC §5), with the
same queries whatever the number of events."""

from __future__ import annotations

import re

from tests.factories import ACTOR, make_asset
from tests.web.pages import parse
from tests.web.test_query_count import HISTORY_QUERIES, count_statements  # noqa: F401
from webapp.models import AuditEvent
from webapp.services import asset_history
from webapp.services import assets as asset_service


def _busy_asset(session, changes: int):  # type: ignore[no-untyped-def]
    asset = make_asset(session, name="busy")
    for i in range(changes):
        asset_service.update(session, ACTOR, asset.id, {"notes": f"change {i}"}, expected_version=None)
    return asset


def test_the_newest_50_then_older_on_demand(session, client, login_as, count_statements):  # noqa: F811
    asset = _busy_asset(session, 119)  # 120 events with the create
    ids = [e.id for e in session.query(AuditEvent).filter_by(entity_id=str(asset.id)).order_by(AuditEvent.id.desc())]
    login_as("viewer")

    first = client.get(f"/assets/{asset.id}/history")
    assert first.status_code == 200
    page = parse(first.data)
    heads = page.find_all("div", **{"class": "event-head"})
    assert len(heads) == asset_history.PAGE
    assert "version 120" in heads[0].text and "version 71" in heads[-1].text
    more = page.find("li", **{"class": "history-more"})
    assert more is not None and more.find("a").text == "Show older events"
    link = more.find("a").attrs["href"]
    assert link.endswith(f"before={ids[49]}")

    # htmx asks for the next items only: 50 more and the next link, no page around them
    second = client.get(link, headers={"HX-Request": "true"})
    assert second.status_code == 200 and b"<html" not in second.data
    fragment = parse(second.data)
    heads = fragment.find_all("div", **{"class": "event-head"})
    assert len(heads) == 50 and "version 70" in heads[0].text and "version 21" in heads[-1].text
    third_link = fragment.find("li", **{"class": "history-more"}).find("a").attrs["href"]

    # without JavaScript the link is a page of its own; the last page offers no more
    last = client.get(third_link)
    page = parse(last.data)
    heads = page.find_all("div", **{"class": "event-head"})
    assert len(heads) == 20 and "Back to the newest" in page.text
    assert page.find("li", **{"class": "history-more"}) is None
    assert re.search(r"\bcreate\b", heads[-1].text)

    # the same statements for the first page and an older one
    assert count_statements(f"/assets/{asset.id}/history") == HISTORY_QUERIES
    assert count_statements(link) == HISTORY_QUERIES


def test_a_short_history_has_no_more_link(session, client, login_as):
    asset = _busy_asset(session, 3)
    login_as("viewer")
    page = parse(client.get(f"/assets/{asset.id}/history").data)
    assert len(page.find_all("div", **{"class": "event-head"})) == 4
    assert page.find("li", **{"class": "history-more"}) is None


def test_a_bad_before_is_ignored(session, client, login_as):
    asset = _busy_asset(session, 2)
    login_as("viewer")
    response = client.get(f"/assets/{asset.id}/history?before=abc")
    assert response.status_code == 200
    assert len(parse(response.data).find_all("div", **{"class": "event-head"})) == 3
