"""`/tags`: every tag with its count; analysts give a tag a colour, and the chips show it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.factories import ACTOR, make_asset
from tests.web.pages import form_csrf_token, parse
from webapp.models import AuditEvent
from webapp.services import assets as asset_service


def test_tags_are_listed_with_live_counts(client, session, login_as):
    make_asset(session, name="a", tags=["pci", "gdpr"])
    make_asset(session, name="b", tags=["pci"])
    gone = make_asset(session, name="c", tags=["pci"])
    asset_service.delete(session, ACTOR, gone.id)
    login_as("viewer")
    page = parse(client.get("/tags").data)
    rows = {r.find("a").text: r.find("td", class_="num").text
            for r in page.find("tbody").find_all("tr")}
    assert rows == {"gdpr": "1", "pci": "2"}
    assert page.find("select") is None  # a viewer reads, does not set


def test_an_analyst_sets_a_colour_and_chips_show_it(client, session, login_as):
    asset = make_asset(session, name="ledger", tags=["pci"])
    login_as("analyst")
    html = client.get("/tags").get_data(as_text=True)
    response = client.post("/tags/pci/colour", data={"colour": "red", "csrf_token": form_csrf_token(html)})
    assert response.status_code == 303
    for url in ("/tags", f"/assets/{asset.id}", "/assets"):
        chips = [el for el in parse(client.get(url).data).iter() if el.get("data-colour") == "red"]
        assert chips and chips[0].text.startswith("pci"), url
    event = session.scalars(select(AuditEvent).where(AuditEvent.entity_type == "tag")).one()
    assert event.changes == {"colour": ["gray", "red"]} and event.entity_id == "pci"


@pytest.mark.parametrize(("url", "data", "status"), [
    ("/tags/pci/colour", {"colour": "ultraviolet"}, 422),
    ("/tags/no-such-tag/colour", {"colour": "red"}, 404),
])
def test_bad_colours_and_unknown_tags(client, session, login_as, url, data, status):
    make_asset(session, name="ledger", tags=["pci"])
    login_as("analyst")
    html = client.get("/tags").get_data(as_text=True)
    assert client.post(url, data={**data, "csrf_token": form_csrf_token(html)}).status_code == status


def test_a_viewer_cannot_set_a_colour(client, session, login_as):
    make_asset(session, name="ledger", tags=["pci"])
    login_as("viewer")
    html = client.get("/tags").get_data(as_text=True)
    token = parse(html).find("meta", name="csrf-token").get("content")
    assert client.post("/tags/pci/colour", data={"colour": "red", "csrf_token": token}).status_code == 403
