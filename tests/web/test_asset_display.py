"""The asset list as each person sets it up: rows per page and visible columns kept per user
(SPEC §5), repeated filters kept in every link, and owner suggestions."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from tests.factories import make_asset
from tests.web.browser import HTMX
from tests.web.pages import parse
from tests.web.test_assets import result_names
from tests.web.test_query_count import ASSET_LIST_QUERIES, count_statements  # noqa: F401 (fixture)
from webapp.models import AuditAction, AuditEvent, User
from webapp.services import assets as asset_service
from webapp.services import preferences
from webapp.services.actor import Actor


def headers(html: bytes) -> list[str]:
    table = parse(html).by_id("results").find("table")
    return [th.text.rstrip(" ▲▼") for th in table.find("thead").find_all("th")
            if "select" not in (th.get("class") or "")]


def row_count(html: bytes) -> int:
    return len(parse(html).by_id("results").find("tbody").find_all("tr"))


def save(client, **form):  # type: ignore[no-untyped-def]
    return client.post("/assets/display", data=form)


def test_defaults_until_a_person_chooses(session, client, login_as):
    make_asset(session, name="orders-db")
    login_as("viewer")
    response = client.get("/assets")
    assert response.status_code == 200
    assert headers(response.data) == ["Name", "Engine", "Host", "Environment", "Status",
                                      "Criticality", "Owner", "Updated"]
    form = parse(response.data).find("form", action="/assets/display")
    assert form is not None, "the list offers its display choices"
    chosen = [o.text for o in form.by_id("display-page-size").find_all("option") if "selected" in o.attrs]
    assert chosen == ["50"]


def test_page_size_and_columns_are_kept_per_user(session, client, login_as, app):
    for i in range(30):
        make_asset(session, name=f"db-{i:02d}", region="eu-west-1", owner="dba@example.com",
                   encrypted_at_rest=i % 2 == 0)
    user = login_as("viewer")
    response = save(client, page_size="25", columns=["region", "owner", "encrypted_at_rest", "engine"],
                    engine="postgresql", sort="-name", after="abc", limit="200")
    assert response.status_code == 303
    back = urlsplit(response.headers["Location"])
    assert back.path == "/assets"
    # back to the same filter and sort; not to the old position or the one-off page size
    assert parse_qs(back.query) == {"engine": ["postgresql"], "sort": ["-name"]}

    page = client.get("/assets")
    # catalogue order, whatever order they were sent in; the name always first
    assert headers(page.data) == ["Name", "Engine", "Region", "Owner", "Encrypted at rest"]
    assert row_count(page.data) == 25
    cells = [td.text for td in parse(page.data).by_id("results").find("tbody")
             .find("tr").find_all("td") if "select" not in (td.get("class") or "")]
    assert cells[2:] == ["eu-west-1", "dba@example.com", "yes"]
    # a link's own page size still wins for that view
    assert row_count(client.get("/assets?limit=10").data) == 10

    session.expire_all()
    stored = session.get(User, user.id).preferences
    assert stored[preferences.KEY] == {"page_size": 25,
                                       "columns": ["engine", "region", "owner", "encrypted_at_rest"]}
    event = session.scalars(select(AuditEvent).where(
        AuditEvent.entity_type == "user", AuditEvent.entity_id == str(user.id),
        AuditEvent.action == AuditAction.update)).one()
    assert event.changes["preferences.asset_list"][1]["page_size"] == 25

    # another person keeps the defaults
    client.post("/logout")
    login_as("viewer")
    assert row_count(client.get("/assets").data) == 30
    assert "Region" not in headers(client.get("/assets").data)


def test_saving_the_same_choices_again_writes_nothing(session, client, login_as):
    user = login_as("analyst")
    save(client, page_size="100", columns=["owner"])
    save(client, page_size="100", columns=["owner"])
    session.expire_all()
    events = session.scalars(select(AuditEvent).where(
        AuditEvent.entity_type == "user", AuditEvent.entity_id == str(user.id),
        AuditEvent.action == AuditAction.update)).all()
    assert len(events) == 1


@pytest.mark.parametrize(("form", "field"), [
    ({"page_size": "30", "columns": ["owner"]}, "page_size"),
    ({"page_size": "many", "columns": ["owner"]}, "page_size"),
    ({"page_size": "50", "columns": ["owner", "connection_string"]}, "columns"),
    ({"page_size": "50", "columns": ["password_hash"]}, "columns"),
])
def test_bad_choices_are_refused_by_name(session, client, login_as, form, field):
    user = login_as("viewer")
    response = save(client, **form)
    assert response.status_code == 422
    assert field.replace("_", " ") in response.get_data(as_text=True).lower().replace("_", " ")
    session.expire_all()
    assert preferences.KEY not in (session.get(User, user.id).preferences or {})


def test_a_stored_column_that_no_longer_exists_is_ignored(session, client, login_as):
    user = login_as("viewer")
    user.preferences = {preferences.KEY: {"page_size": 7, "columns": ["owner", "gone", 3]}}
    session.commit()
    make_asset(session, name="one")
    response = client.get("/assets")
    assert response.status_code == 200
    assert headers(response.data) == ["Name", "Owner"]


def test_signed_out_people_cannot_save(client):
    response = save(client, page_size="25", columns=["owner"])
    assert response.status_code in (302, 401)


def test_every_column_shown_costs_no_extra_query(session, client, login_as, count_statements):  # noqa: F811
    for i in range(12):
        make_asset(session, name=f"wide-{i}", tags=["pci", "gdpr"], region="us-east-1")
    login_as("viewer")
    save(client, page_size="100", columns=list(preferences.COLUMNS))
    assert count_statements("/assets") == ASSET_LIST_QUERIES


def test_the_htmx_partial_uses_the_same_columns(session, client, login_as):
    make_asset(session, name="one", region="eu-north-1")
    login_as("viewer")
    save(client, page_size="25", columns=["region"])
    response = client.get("/assets?q=one", headers=HTMX)
    assert response.status_code == 200
    assert headers(response.data) == ["Name", "Region"]
    assert b"<html" not in response.data


# --- repeated filters --------------------------------------------------------------------------

def test_repeated_filters_select_both_and_survive_sorting_and_paging(session, client, login_as):
    for i in range(3):
        make_asset(session, name=f"pg-{i}", engine="postgresql")
        make_asset(session, name=f"my-{i}", engine="mysql")
        make_asset(session, name=f"mongo-{i}", engine="mongodb")
    login_as("viewer")
    response = client.get("/assets?engine=postgresql&engine=mysql&limit=4")
    assert result_names(response.data) == ["my-0", "my-1", "my-2", "pg-0"]
    doc = parse(response.data)
    for href in (doc.find("a", rel="next").get("href"),
                 doc.find("thead").find("a").get("href")):
        assert parse_qs(urlsplit(href).query)["engine"] == ["postgresql", "mysql"]
    nxt = client.get(doc.find("a", rel="next").get("href"))
    assert result_names(nxt.data) == ["pg-1", "pg-2"]


# --- owner suggestions ---------------------------------------------------------------------------

def test_owner_suggestions_start_with_what_was_typed(session, client, login_as):
    owners = ["dba@example.com"] * 3 + ["Data-Team@example.com", "ops@example.com", None]
    for i, owner in enumerate(owners):
        make_asset(session, name=f"owned-{i}", owner=owner)
    gone = make_asset(session, name="trashed", owner="dbadmin@example.com")
    asset_service.delete(session, Actor.system("test"), gone.id)
    login_as("viewer")
    response = client.get("/assets/owners?owner=D", headers=HTMX)
    assert response.status_code == 200
    values = [o.get("value") for o in parse(response.data).find_all("option")]
    # any case; the most common first; owners of trashed assets not offered
    assert values == ["dba@example.com", "Data-Team@example.com"]
    assert parse(client.get("/assets/owners?owner=").data).find_all("option") == []
    assert parse(client.get("/assets/owners?owner=%00").data).find_all("option") == []
    assert parse(client.get("/assets/owners?owner=_").data).find_all("option") == []
    page = parse(client.get("/assets").data)
    owner = page.by_id("f-owner")
    assert owner.get("list") == "owner-options" and page.by_id("owner-options") is not None
