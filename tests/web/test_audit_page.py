"""/audit reads as people do: entities by name with a link, and the Entity filter takes a name."""

from __future__ import annotations

from tests.factories import ACTOR, make_asset
from tests.web.pages import parse
from webapp.services import assets as asset_service


def _children(element, tag: str) -> list:  # type: ignore[no-untyped-def]
    return [c for c in element.children if not isinstance(c, str) and c.tag == tag]


def _entity_cells(html: str | bytes) -> list[str]:
    """The Entity column of the log (the diff tables nested in Changes left out)."""
    table = parse(html).find("table", class_="data audit")
    if table is None:
        return []
    return [_children(row, "td")[4].text for row in _children(table.find("tbody"), "tr")]


def test_events_name_their_asset_and_link_to_its_history(client, session, login_as):
    asset = make_asset(session, name="orders-primary-with-a-rather-long-name")
    login_as("viewer")
    html = client.get("/audit?entity_type=asset").get_data(as_text=True)
    cells = _entity_cells(html)
    assert cells and all("orders-primary-with-a-rather-long-name" in c for c in cells)
    link = parse(html).find("a", href=f"/assets/{asset.id}/history")
    assert link is not None and link.text == asset.name


def test_a_purged_asset_is_said_to_be_purged(client, session, login_as):
    asset = make_asset(session, name="gone-db")
    asset_service.delete(session, ACTOR, asset.id)
    asset_service.purge(session, ACTOR, asset.id)
    login_as("viewer")
    cells = _entity_cells(client.get("/audit?entity_type=asset").data)
    assert cells and all("(purged)" in c and "gone-db" not in c for c in cells)


def test_the_entity_filter_takes_a_name_in_any_case_or_an_id(client, session, login_as):
    orders = make_asset(session, name="Orders-DB")
    make_asset(session, name="billing-db")
    login_as("viewer")
    for text in ("Orders-DB", "orders-db", str(orders.id)):
        cells = _entity_cells(client.get("/audit", query_string={"entity_id": text}).data)
        assert cells and all("Orders-DB" in c for c in cells), text
    html = client.get("/audit", query_string={"entity_id": "no-such-db"}).get_data(as_text=True)
    assert "No events match." in html


def test_user_events_name_the_user(client, session, login_as):
    user = login_as("viewer")
    cells = _entity_cells(client.get("/audit?entity_type=user").data)
    assert any(user.email in c for c in cells)
