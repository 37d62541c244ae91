"""Relationships in the browser (SPEC §5): an asset's Relationships tab (its links, adding one
through the form with `Find asset`, removing one, the cycle warning, the impact list and the
graph's data) and `/relationships` (filters, keyset paging, removing). Every role reads; only
analyst and above change, checked on the server. Each change shows in both assets' History."""

from __future__ import annotations

import functools
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from tests.factories import ACTOR, make_asset
from tests.review_factories import make_run
from tests.web.browser import HTMX, field_value, form_values
from tests.web.pages import (
    alert_text,
    field_messages,
    form_csrf_token,
    in_app_layout,
    labelled_control,
    parse,
)
from webapp.models import AssetRelationship, AuditEvent, RelationshipKind
from webapp.services import assets as asset_service
from webapp.services import relationships

ROLES = ["viewer", "analyst", "reviewer", "admin"]


def link(session, source, target, kind: str = "depends_on", description: str | None = None):  # type: ignore[no-untyped-def]
    return relationships.create(session, ACTOR, source_id=source.id, target_id=target.id, kind=kind,
                                description=description)


def discovered(session, source, target, kind: str = "depends_on"):  # type: ignore[no-untyped-def]
    """A link as an import states it (the import run's number shows beside it)."""
    run = make_run(session)
    rel = link(session, source, target, kind)
    rel.import_run_id = run.id
    session.commit()
    return rel, run


def counts(session) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(relationships, audit events)."""
    session.expire_all()
    return (session.scalar(select(func.count()).select_from(AssetRelationship)),
            session.scalar(select(func.count()).select_from(AuditEvent)))


def link_rows(html: str | bytes) -> list[str]:
    """The Relationships card as a person reads it: one sentence per link, with its origin."""
    table = parse(html).by_id("relationships-panel").find("table", class_="data compact links")
    if table is None:
        return []
    return [" | ".join(td.text for td in tr.find_all("td")[:3]) for tr in table.find("tbody").find_all("tr")]


def impact_rows(html: str | bytes) -> list[str]:
    section = parse(html).find("section", class_="card impact")
    assert section is not None
    table = section.find("table")
    if table is None:
        return []
    return [" | ".join(td.text for td in tr.find_all("td")) for tr in table.find("tbody").find_all("tr")]


def list_rows(html: str | bytes) -> list[dict[str, str]]:
    table = parse(html).by_id("results").find("table")
    if table is None:
        return []
    heads = [th.text for th in table.find("thead").find_all("th")]
    return [dict(zip(heads, (td.text for td in tr.find_all("td")), strict=True))
            for tr in table.find("tbody").find_all("tr")]


def tab_url(asset) -> str:  # type: ignore[no-untyped-def]
    return f"/assets/{asset.id}/relationships"


def add(client, asset, target=None, *, htmx: bool = False, **fields: str):  # type: ignore[no-untyped-def]
    """Send the Add relationship form as the page renders it, with these fields changed."""
    page = client.get(tab_url(asset)).data
    data = form_values(page, tab_url(asset))
    if target is not None:
        data["target_id"] = str(target.id)
    data.update(fields)
    return client.post(tab_url(asset), data=data, headers=HTMX if htmx else {})


@pytest.fixture
def pair(session):  # type: ignore[no-untyped-def]
    return (make_asset(session, name="app-db", host="app.example.com"),
            make_asset(session, name="orders-db", host="orders.example.com", criticality="critical"))


# --- the tab, for every role ----------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_the_tab_renders_for_every_role_and_only_analysts_see_the_controls(client, session, login_as,
                                                                           pair, role):
    app_db, orders = pair
    link(session, app_db, orders, description="reads the orders schema")
    login_as(role)
    response = client.get(tab_url(app_db))
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and in_app_layout(html)
    page = parse(html)
    tabs = page.find("nav", aria_label="Asset sections")
    assert [a.text for a in tabs.find_all("a")] == ["Overview", "Relationships", "Policy", "History", "Sources"]
    assert tabs.find("a", aria_current="page").text == "Relationships"
    assert link_rows(html) == ["app-db depends on orders-db | reads the orders schema | manual"]
    assert page.by_id("relationships-panel").find("a", href=tab_url(orders)) is not None
    assert page.find("h2", id="impact-title").text == "If this goes down"
    assert "Nothing depends on it." in html
    # the graph's controls and its data address; the drawing is a static script
    assert labelled_control(page, "Depth").tag == "select"
    assert [o.text for o in labelled_control(page, "Direction").find_all("option")] == [
        "Upstream", "Downstream", "Both"]
    assert field_value(html, "graph-depth") == "2" and field_value(html, "graph-direction") == "both"
    graph = page.by_id("graph")
    assert graph.get("data-graph-url") == f"/assets/{app_db.id}/graph.json"
    assert page.find("script", src="/static/vendor/cytoscape-3.34.4/cytoscape.min.js") is not None
    assert page.find("script", src="/static/js/graph.js") is not None
    assert not [s for s in page.find_all("script") if not s.get("src")]
    assert " style=" not in html
    legend = page.find("ul", class_="graph-legend")
    assert [li.text for li in legend.find_all("li")][:5] == [
        "production", "staging", "development", "test", "unknown"]
    buttons = [b.text for b in page.find_all("button")]
    if role == "viewer":
        assert page.find("form", id="add-link") is None
        assert not [b for b in buttons if b.startswith("Remove")]
    else:
        assert "Remove app-db depends on orders-db" in buttons
        assert "Add relationship" in buttons
        assert labelled_control(page, "Kind").tag == "select"
        assert labelled_control(page, "Find asset").get("type") == "search"
        assert labelled_control(page, "Description").tag == "textarea"
        assert [o.text for o in labelled_control(page, "Kind").find_all("option")] == [
            "depends on", "replicates to", "backs up to", "feeds", "is a member of"]


def test_htmx_gets_the_panel_alone(client, session, login_as, pair):
    login_as("viewer")
    response = client.get(tab_url(pair[0]), headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert 'id="relationships-panel"' in html and "If this goes down" in html
    assert "HX-Request" in response.headers["Vary"]


def test_an_asset_without_links_shows_empty_states(client, session, login_as, pair):
    login_as("analyst")
    html = client.get(tab_url(pair[0])).get_data(as_text=True)
    panel = parse(html).by_id("relationships-panel")
    assert "No relationships yet. Link this asset to another with the form." in panel.text
    assert "Nothing depends on it." in panel.text
    message = parse(html).find("p", class_="graph-message")
    assert message.text.startswith("No relationships yet: the graph shows")


def test_a_trashed_asset_shows_its_links_but_no_form(client, session, login_as, pair):
    app_db, orders = pair
    link(session, app_db, orders)
    asset_service.delete(session, ACTOR, app_db.id)
    login_as("analyst")
    html = client.get(tab_url(app_db)).get_data(as_text=True)
    assert parse(html).find("form", id="add-link") is None
    assert link_rows(html) == ["app-db depends on orders-db | — | manual"]


@pytest.mark.parametrize("path", [
    "/assets/{a}/relationships", "/assets/{a}/graph.json", "/assets/{a}/relationships/find?find=x",
    "/relationships",
])
def test_anonymous_visitors_are_sent_to_sign_in(client, make_user, pair, path):
    make_user("admin")
    response = client.get(path.format(a=pair[0].id))
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"


def test_an_unknown_asset_is_404(client, login_as):
    login_as("viewer")
    assert client.get("/assets/7d0c5b8e-0000-4000-8000-000000000000/relationships").status_code == 404
    assert client.get("/assets/not-a-uuid/graph.json").status_code == 404


# --- adding ---------------------------------------------------------------------------------------

def test_add_through_the_form_without_htmx(client, session, login_as, pair):
    app_db, orders = pair
    login_as("analyst")
    response = add(client, app_db, orders, description="  reads orders ")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(tab_url(app_db))
    html = client.get(tab_url(app_db)).get_data(as_text=True)
    assert "Added: app-db depends on orders-db." in parse(html).by_id("flashes").text
    assert link_rows(html) == ["app-db depends on orders-db | reads orders | manual"]
    assert "cycle" not in html.lower()
    # the other end sees it from its side, and what depends on it
    other = client.get(tab_url(orders)).get_data(as_text=True)
    assert link_rows(other) == ["app-db depends on orders-db | reads orders | manual"]
    assert "1 asset depends on it" in parse(other).find("p", class_="impact-count").text
    assert impact_rows(other) == ["app-db | — | production | direct"]


def test_add_with_htmx_swaps_the_panel_and_reloads_the_graph(client, session, login_as, pair):
    app_db, orders = pair
    login_as("analyst")
    response = add(client, app_db, orders, htmx=True, kind="backs_up_to")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert response.headers["HX-Trigger"] == "relationships-changed"
    page = parse(html)
    flashes = page.by_id("flashes")
    assert flashes.get("hx-swap-oob") == "true"
    assert flashes.text == "Added: app-db backs up to orders-db."
    assert link_rows(html) == ["app-db backs up to orders-db | — | manual"]
    # a fresh form for the next link
    assert field_value(html, "link-target") == ""


def test_the_other_direction_makes_the_picked_asset_the_source(client, session, login_as, pair):
    app_db, orders = pair
    login_as("analyst")
    assert add(client, orders, app_db, direction="incoming", kind="feeds").status_code == 303
    [rel] = session.scalars(select(AssetRelationship)).all()
    assert (rel.source_id, rel.target_id, rel.kind) == (app_db.id, orders.id, RelationshipKind.feeds)
    html = client.get(tab_url(orders)).get_data(as_text=True)
    assert "Added: app-db feeds orders-db." in html
    assert link_rows(html) == ["app-db feeds orders-db | — | manual"]


@pytest.mark.parametrize("case,fields,field_id,message", [
    ("no target", {"target_id": ""}, "link-target", "Choose an asset."),
    ("not an id", {"target_id": "nope"}, "link-target", "Choose an asset."),
    ("no such asset", {"target_id": "7d0c5b8e-0000-4000-8000-000000000000"}, "link-target",
     "There is no such asset."),
    ("itself", {"target_id": "{self}"}, "link-target", "An asset cannot be linked to itself."),
    ("trashed target", {"target_id": "{trashed}"}, "link-target", "is in the trash; restore it first."),
    ("trashed source", {"target_id": "{trashed}", "direction": "incoming"}, "link-target",
     "is in the trash; restore it first."),
    ("bad kind", {"kind": "loves"}, "link-kind", "Choose one of: depends_on, replicates_to"),
    ("long description", {"description": "x" * 501}, "link-description", "At most 500 characters."),
])
def test_each_invalid_field_is_422_with_its_message_beside_it(client, session, login_as, pair, case,
                                                               fields, field_id, message):
    app_db, orders = pair
    trashed = make_asset(session, name="old-db")
    asset_service.delete(session, ACTOR, trashed.id)
    login_as("analyst")
    before = counts(session)
    data = {k: v.format(self=app_db.id, trashed=trashed.id) for k, v in fields.items()}
    data.setdefault("description", "kept as typed")
    response = add(client, app_db, orders, htmx=True, **data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422, html
    assert "<html" not in html and "HX-Trigger" not in response.headers
    page = parse(html)
    assert message in field_messages(page, field_id), (case, html)
    # what was typed stays
    assert field_value(html, "link-description") == data["description"]
    if case == "trashed source":
        assert "old-db" in page.find("strong", data_chosen_name="").text
        assert field_value(html, "link-target") == str(trashed.id)
    assert counts(session) == before


def test_a_bad_direction_is_422(client, session, login_as, pair):
    login_as("analyst")
    response = add(client, pair[0], pair[1], htmx=True, direction="sideways")
    assert response.status_code == 422
    assert "Choose which way the link goes." in response.get_data(as_text=True)


def test_the_same_link_twice_is_409_with_a_clear_message(client, session, login_as, pair):
    app_db, orders = pair
    link(session, app_db, orders)
    login_as("analyst")
    before = counts(session)
    response = add(client, app_db, orders, htmx=True)
    assert response.status_code == 409
    page = parse(response.data)
    assert alert_text(page) == "“app-db” already depends on “orders-db”."
    # the choice stays, to change the kind and send again
    assert page.find("strong", data_chosen_name="").text == "orders-db"
    assert counts(session) == before


def test_a_link_that_closes_a_cycle_is_added_with_a_warning(client, session, login_as, pair):
    app_db, orders = pair
    cache = make_asset(session, name="cache-db")
    link(session, orders, cache)
    link(session, cache, app_db)
    login_as("analyst")
    response = add(client, app_db, orders, htmx=True)
    assert response.status_code == 200
    page = parse(response.data)
    assert [div.text for div in page.by_id("flashes").find_all("div")] == [
        "Added: app-db depends on orders-db.",
        "This closes a dependency cycle: orders-db already depends on app-db, directly or through "
        "other assets.",
    ]
    banner = page.find("div", class_="flash flash-warning cycle-warning")
    assert re.sub(r" ([,:])", r"\1", banner.text) == (
        "Dependency cycle. This asset is on a dependency cycle with cache-db, orders-db: it depends "
        "on each of them and each of them depends on it, directly or through others.")
    assert [a.get("href") for a in banner.find_all("a")] == [tab_url(cache), tab_url(orders)]
    # the others on the cycle say so too
    other = parse(client.get(tab_url(cache)).data).find("div", class_="flash flash-warning cycle-warning")
    assert "dependency cycle with app-db , orders-db :" in other.text


def test_a_link_of_another_kind_is_no_cycle(client, session, login_as, pair):
    app_db, orders = pair
    link(session, orders, app_db, kind="feeds")
    login_as("analyst")
    html = add(client, app_db, orders, htmx=True).get_data(as_text=True)
    assert "cycle" not in html.lower()


# --- removing -------------------------------------------------------------------------------------

def test_remove_with_htmx(client, session, login_as, pair):
    app_db, orders = pair
    link(session, app_db, orders)
    login_as("analyst")
    page = parse(client.get(tab_url(orders)).data)
    [form] = [f for f in page.find_all("form") if "/relationships/" in (f.get("action") or "")]
    assert form.get("hx-confirm") == "Remove the link “app-db depends on orders-db”?"
    assert form.find("input", name="csrf_token") is not None
    response = client.post(form.get("action"), headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["HX-Trigger"] == "relationships-changed"
    assert parse(html).by_id("flashes").text == "Removed: app-db depends on orders-db."
    assert link_rows(html) == [] and "No relationships yet." in html
    assert counts(session)[0] == 0


def test_remove_without_htmx_redirects_to_the_tab(client, session, login_as, pair):
    app_db, orders = pair
    rel = link(session, app_db, orders)
    login_as("analyst")
    response = client.post(f"{tab_url(app_db)}/{rel.id}/delete")
    assert response.status_code == 303 and response.headers["Location"].endswith(tab_url(app_db))
    assert "Removed: app-db depends on orders-db." in client.get(tab_url(app_db)).get_data(as_text=True)
    assert counts(session)[0] == 0


def test_removing_through_another_assets_tab_is_404(client, session, login_as, pair):
    app_db, orders = pair
    rel = link(session, app_db, orders)
    stranger = make_asset(session, name="stranger-db")
    login_as("analyst")
    assert client.post(f"{tab_url(stranger)}/{rel.id}/delete").status_code == 404
    assert client.post(f"{tab_url(app_db)}/not-an-id/delete").status_code == 404
    assert counts(session)[0] == 1


@pytest.mark.parametrize("action", ["add", "remove", "remove from the list"])
def test_viewers_cannot_change_links(client, session, login_as, pair, action):
    app_db, orders = pair
    rel = link(session, orders, app_db)
    login_as("viewer")
    before = counts(session)
    url, data = {
        "add": (tab_url(app_db), {"kind": "depends_on", "direction": "outgoing",
                                  "target_id": str(orders.id)}),
        "remove": (f"{tab_url(app_db)}/{rel.id}/delete", {}),
        "remove from the list": (f"/relationships/{rel.id}/delete", {}),
    }[action]
    for headers in ({}, HTMX):
        response = client.post(url, data=data, headers=headers)
        assert response.status_code == 403
        assert "needs the analyst role" in response.get_data(as_text=True)
    assert counts(session) == before


def test_each_change_shows_in_both_assets_history(client, session, login_as, pair):
    app_db, orders = pair
    login_as("analyst")
    add(client, app_db, orders)
    [rel] = session.scalars(select(AssetRelationship)).all()
    client.post(f"{tab_url(app_db)}/{rel.id}/delete")
    for asset in pair:
        page = parse(client.get(f"/assets/{asset.id}/history").data)
        events = [li for li in page.find("ol", class_="timeline").find_all("li")
                  if "app-db depends on orders-db" in li.text]
        assert [e.text.split()[0] for e in events] == ["unlink", "link"], asset.name


# --- Find asset -----------------------------------------------------------------------------------

def find(client, asset, text: str):  # type: ignore[no-untyped-def]
    return client.get(f"{tab_url(asset)}/find", query_string={"find": text}, headers=HTMX)


def picks(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.get("data-pick-name") for b in parse(response.data).find_all("button", class_="pick")]


def test_find_asset_searches_live_assets_by_name_and_host_as_you_type(client, session, login_as, pair):
    app_db, orders = pair
    make_asset(session, name="orders-replica", host="replica.example.com")
    gone = make_asset(session, name="orders-old")
    asset_service.delete(session, ACTOR, gone.id)
    login_as("analyst")
    box = labelled_control(parse(client.get(tab_url(app_db)).data), "Find asset")
    assert box.get("hx-get") == f"{tab_url(app_db)}/find"
    assert box.get("hx-trigger") == "input changed delay:300ms, search"
    assert box.get("hx-target") == "#find-results"
    assert picks(find(client, app_db, "orders")) == ["orders-db", "orders-replica"]
    assert picks(find(client, app_db, "replica.example")) == ["orders-replica"]
    # not the asset itself, not a trashed one
    assert picks(find(client, app_db, "app-db")) == []
    assert picks(find(client, app_db, "orders-old")) == []
    assert "No live asset matches “orders-old”." in find(client, app_db, "orders-old").get_data(as_text=True)
    button = parse(find(client, app_db, "orders-db").data).find("button", class_="pick")
    assert button.get("data-pick-id") == str(orders.id)
    assert button.text == "orders-db orders.example.com · production"
    # nothing typed, nothing listed
    empty = find(client, app_db, "  ")
    assert empty.status_code == 200 and picks(empty) == [] and "No live asset" not in empty.get_data(as_text=True)


def test_find_asset_shows_ten_and_says_when_there_are_more(client, session, login_as, pair):
    for i in range(12):
        make_asset(session, name=f"shard-{i:02d}")
    login_as("viewer")
    response = find(client, pair[0], "shard")
    assert picks(response) == [f"shard-{i:02d}" for i in range(10)]
    assert "More assets match; keep typing" in response.get_data(as_text=True)
    assert "More assets match" not in find(client, pair[0], "shard-1").get_data(as_text=True)


def test_find_asset_refuses_a_nul(client, login_as, pair):
    login_as("analyst")
    response = find(client, pair[0], "ord\x00ers")
    assert response.status_code == 422 and "Remove the NUL character" in response.get_data(as_text=True)


# --- the impact list ------------------------------------------------------------------------------

def test_the_impact_list_puts_the_most_critical_first_with_depth(client, session, login_as):
    core = make_asset(session, name="core-db", criticality="low")
    api = make_asset(session, name="api-db", criticality="medium", environment="staging")
    billing = make_asset(session, name="billing-db", criticality="critical")
    reports = make_asset(session, name="reports-db")
    link(session, api, core)
    link(session, billing, api)
    link(session, core, reports, kind="replicates_to")  # reports is a replica: it depends on core
    login_as("viewer")
    html = client.get(tab_url(core)).get_data(as_text=True)
    assert parse(html).find("p", class_="impact-count").text.startswith("3 assets depend on it")
    assert impact_rows(html) == [
        "billing-db | critical | production | via 2 hops",
        "api-db | medium | staging | direct",
        "reports-db | — | production | direct",
    ]
    assert parse(html).find("section", class_="card impact").find("a", href=tab_url(billing)) is not None


def test_a_truncated_impact_list_says_so(client, session, login_as, monkeypatch):
    core = make_asset(session, name="core-db")
    for i in range(3):
        link(session, make_asset(session, name=f"user-{i}"), core)
    monkeypatch.setattr(relationships, "impact", functools.partial(relationships.impact, limit=2))
    login_as("viewer")
    html = client.get(tab_url(core)).get_data(as_text=True)
    assert parse(html).find("p", class_="impact-count").text.startswith(
        "2+ assets depend on it (list truncated)")
    assert len(impact_rows(html)) == 2


def test_discovered_links_name_their_import(client, session, login_as, pair):
    app_db, orders = pair
    _rel, run = discovered(session, app_db, orders)
    login_as("viewer")
    html = client.get(tab_url(app_db)).get_data(as_text=True)
    assert link_rows(html) == [f"app-db depends on orders-db | — | discovered by import #{run.number}"]
    assert parse(html).by_id("relationships-panel").find("a", href=f"/imports/{run.id}") is not None


# --- the graph's data -----------------------------------------------------------------------------

def test_graph_json_is_the_neighbourhood_in_the_api_shape(client, session, login_as, pair):
    app_db, orders = pair
    backup = make_asset(session, name="backup-store", environment="development")
    rel = link(session, app_db, orders)
    link(session, orders, backup, kind="backs_up_to")
    login_as("viewer")
    response = client.get(f"/assets/{orders.id}/graph.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    data = response.get_json()
    assert set(data) == {"root", "direction", "depth", "truncated", "nodes", "edges"}
    assert (data["root"], data["direction"], data["depth"], data["truncated"]) == (
        str(orders.id), "both", 2, False)
    nodes = {n["name"]: n for n in data["nodes"]}
    assert data["nodes"][0]["name"] == "orders-db" and nodes["orders-db"]["side"] == "self"
    assert (nodes["app-db"]["side"], nodes["app-db"]["depth"]) == ("down", 1)
    assert (nodes["backup-store"]["side"], nodes["backup-store"]["environment"]) == ("up", "development")
    assert nodes["orders-db"]["criticality"] == "critical"
    assert set(nodes["app-db"]) == {"id", "name", "engine", "environment", "status", "criticality",
                                     "host", "depth", "side"}
    edge = next(e for e in data["edges"] if e["id"] == str(rel.id))
    assert (edge["source_id"], edge["target_id"], edge["kind"]) == (str(app_db.id), str(orders.id),
                                                                      "depends_on")
    assert data == relationships.graph_dict(relationships.graph(session, orders.id))
    # one way only, and depth
    up = client.get(f"/assets/{orders.id}/graph.json?direction=up").get_json()
    assert [n["name"] for n in up["nodes"]] == ["orders-db", "backup-store"]
    down = client.get(f"/assets/{orders.id}/graph.json?direction=down&depth=1").get_json()
    assert [n["name"] for n in down["nodes"]] == ["orders-db", "app-db"] and down["depth"] == 1


def test_graph_json_of_a_lone_asset_is_just_the_asset(client, session, login_as, pair):
    login_as("viewer")
    data = client.get(f"/assets/{pair[0].id}/graph.json").get_json()
    assert [n["name"] for n in data["nodes"]] == ["app-db"] and data["edges"] == []


@pytest.mark.parametrize("query,field", [
    ("depth=0", "depth"), ("depth=6", "depth"), ("depth=two", "depth"), ("depth=99999999999", "depth"),
    ("direction=sideways", "direction"), ("colour=rainbow", "colour"),
])
def test_bad_graph_settings_are_422(client, login_as, pair, query, field):
    login_as("viewer")
    response = client.get(f"/assets/{pair[0].id}/graph.json?{query}")
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert [e["field"] for e in response.get_json()["errors"]] == [field]
    page = client.get(f"{tab_url(pair[0])}?{query}")
    assert page.status_code == 422 and in_app_layout(page.data)


def test_the_tab_keeps_the_graph_settings_from_the_url(client, login_as, pair):
    login_as("viewer")
    html = client.get(f"{tab_url(pair[0])}?depth=4&direction=up").get_data(as_text=True)
    assert field_value(html, "graph-depth") == "4" and field_value(html, "graph-direction") == "up"


def test_the_graph_is_laid_out_in_layers_and_coloured_by_choice(client, login_as, pair):
    """The layered layout is vendored (dagre, loaded after Cytoscape); `Colour by` offers
    environment, engine and criticality, each option carrying its values in the legend's order,
    and the URL keeps the choice."""
    login_as("viewer")
    html = client.get(tab_url(pair[0])).get_data(as_text=True)
    page = parse(html)
    scripts = [s.get("src") for s in page.find_all("script") if s.get("src")]
    cytoscape = scripts.index("/static/vendor/cytoscape-3.34.4/cytoscape.min.js")
    dagre = scripts.index("/static/vendor/cytoscape-dagre-4.0.1/cytoscape-dagre.min.js")
    assert cytoscape < dagre < scripts.index("/static/js/graph.js")
    colour = labelled_control(page, "Colour by")
    assert [o.text for o in colour.find_all("option")] == ["Environment", "Engine", "Criticality"]
    assert field_value(html, "graph-colour") == "environment"
    assert colour.find("option", value="criticality").get("data-values").split() == [
        "critical", "high", "medium", "low", "none"]
    assert "postgresql" in colour.find("option", value="engine").get("data-values").split()
    # the graph comes before the links and the impact list
    assert html.index('id="graph"') < html.index('id="links-title"') < html.index('id="impact-title"')
    html = client.get(f"{tab_url(pair[0])}?colour=engine").get_data(as_text=True)
    assert field_value(html, "graph-colour") == "engine"


# --- /relationships -------------------------------------------------------------------------------

@pytest.fixture
def many(session):  # type: ignore[no-untyped-def]
    """60 links from hub-db: 12 assets × 5 kinds, oldest first; the last 5 discovered."""
    hub = make_asset(session, name="hub-db")
    made = []
    for i in range(12):
        other = make_asset(session, name=f"spoke-{i:02d}")
        for kind in RelationshipKind:
            made.append(link(session, hub, other, kind.value))
    run = make_run(session)
    for rel in made[-5:]:
        rel.import_run_id = run.id
    session.commit()
    return {"hub": hub, "links": made, "run": run}


@pytest.mark.parametrize("role", ROLES)
def test_the_list_renders_for_every_role(client, session, login_as, pair, role):
    app_db, orders = pair
    link(session, app_db, orders, description="reads orders")
    login_as(role)
    response = client.get("/relationships")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and in_app_layout(html)
    nav = parse(html).find("nav", aria_label="Main")
    assert [a.text for a in nav.find_all("a")][1:3] == ["Assets", "Relationships"]
    assert nav.find("a", aria_current="page").text == "Relationships"
    [row] = list_rows(html)
    assert {k: row[k] for k in ("Source", "Kind", "Target", "Description", "Origin")} == {
        "Source": "app-db", "Kind": "depends on →", "Target": "orders-db",
        "Description": "reads orders", "Origin": "manual"}
    assert row["Created"].endswith("UTC")
    results = parse(html).by_id("results")
    assert results.find("a", href=tab_url(app_db)) and results.find("a", href=tab_url(orders))
    page = parse(html)
    assert labelled_control(page, "Search").get("name") == "q"
    assert labelled_control(page, "Kind").get("name") == "kind"
    assert [o.text for o in labelled_control(page, "Origin").find_all("option")] == [
        "any", "manual", "discovered"]
    assert ("Remove" in row.get("Actions", "")) == (role != "viewer")


def test_the_list_is_searched_as_you_type_and_pushes_the_url(client, login_as):
    login_as("viewer")
    form = parse(client.get("/relationships").data).find("form", class_="filters")
    assert form.get("hx-get") == "/relationships" and form.get("hx-push-url") == "true"
    assert "input changed delay:300ms from:#q" in form.get("hx-trigger")
    assert form.get("hx-target") == "#results"


@pytest.mark.parametrize("query,expected", [
    ("kind=feeds", 12),
    ("q=spoke-03", 5),
    ("q=SPOKE-03&kind=member_of", 1),
    ("q=hub", 50),
    ("origin=discovered", 5),
    ("origin=manual&kind=depends_on", 12 - 1),  # spoke-11's depends_on is one of the discovered
    ("q=nobody", 0),
])
def test_filters_narrow_the_list_and_stay_in_the_form(client, login_as, many, query, expected):
    login_as("viewer")
    response = client.get(f"/relationships?{query}", headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert len(list_rows(html)) == expected
    args = parse_qs(urlsplit("?" + query).query)
    full = client.get(f"/relationships?{query}").get_data(as_text=True)
    assert field_value(full, "f-kind") == args.get("kind", [""])[0]
    assert field_value(full, "f-origin") == args.get("origin", [""])[0]
    assert field_value(full, "q") == args.get("q", [""])[0]
    if not expected:
        assert "No relationships match these filters." in html


def test_discovered_rows_name_their_import(client, login_as, many):
    login_as("viewer")
    rows = list_rows(client.get("/relationships?origin=discovered").data)
    assert {r["Origin"] for r in rows} == {f"discovered by import #{many['run'].number}"}


def test_the_list_pages_with_a_cursor(client, login_as, many):
    login_as("viewer")
    first = client.get("/relationships").get_data(as_text=True)
    assert len(list_rows(first)) == 50
    pager = parse(first).find("nav", class_="pager")
    nxt = pager.find("a", rel="next")
    assert nxt.text == "Next →" and nxt.get("hx-push-url") == "true"
    assert "First page" not in pager.text
    second = client.get(nxt.get("href"), headers=HTMX).get_data(as_text=True)
    rows = list_rows(second)
    assert len(rows) == 10
    # newest first: the page ends with the oldest link, spoke-00 depends on ... the first made
    assert rows[-1]["Target"] == "spoke-00" and rows[-1]["Kind"] == "depends on →"
    pager = parse(second).find("nav", class_="pager")
    assert pager.find("a", rel="next") is None and "← First page" in pager.text
    # every link once across both pages
    seen = [(r["Target"], r["Kind"]) for r in list_rows(first) + rows]
    assert len(set(seen)) == 60
    # a filtered list that fits one page has no Next
    filtered = client.get("/relationships?q=spoke&kind=depends_on").get_data(as_text=True)
    assert parse(filtered).find("a", rel="next") is None


def test_bad_filters_and_cursors_are_422(client, login_as, many):
    login_as("viewer")
    for query, message in [("kind=loves", "Choose one of: depends_on"),
                           ("origin=magic", "Choose manual or discovered."),
                           ("after=bogus", "This page link is not valid"),
                           ("after=MjAyNS0wMS0wMXxub3BlCg", "This page link is not valid"),
                           ("q=a%00b", "Remove the NUL character")]:
        response = client.get(f"/relationships?{query}")
        assert response.status_code == 422, query
        assert message in parse(response.data).by_id("results").find(role="alert").text, query


def test_an_empty_list_says_where_links_come_from(client, login_as):
    login_as("viewer")
    html = client.get("/relationships").get_data(as_text=True)
    assert "No relationships yet. Link assets on an asset's Relationships tab" in html
    assert parse(html).find("a", rel="next") is None


def test_remove_from_the_list_keeps_the_filters(client, session, login_as, many):
    login_as("analyst")
    page = parse(client.get("/relationships?kind=feeds&q=spoke").data)
    form = next(f for f in page.by_id("results").find_all("form"))
    assert form.get("hx-confirm", "").startswith("Remove the link “hub-db feeds spoke-11”")
    response = client.post(form.get("action"))
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == "/relationships" and parse_qs(location.query) == {
        "kind": ["feeds"], "q": ["spoke"]}
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Removed: hub-db feeds spoke-11." in html and len(list_rows(html)) == 11
    # with htmx: the browser is sent to the same list
    form = next(f for f in parse(html).by_id("results").find_all("form"))
    response = client.post(form.get("action"), headers=HTMX)
    assert response.status_code == 204 and urlsplit(response.headers["HX-Redirect"]).path == "/relationships"
    assert counts(session)[0] == 58


# --- adding a link from /relationships ----------------------------------------------------------

def _add_form(client):  # type: ignore[no-untyped-def]
    html = client.get("/relationships").get_data(as_text=True)
    return parse(html), form_csrf_token(html)


def test_an_analyst_adds_a_link_by_names_from_the_list(client, session, login_as):
    make_asset(session, name="orders-app-db")
    make_asset(session, name="orders-primary")
    login_as("analyst")
    page, token = _add_form(client)
    labels = {lab.text for lab in page.by_id("add-link").find_all("label")}
    assert {"From asset", "Kind", "To asset", "Description"} <= labels
    response = client.post("/relationships", data={
        "csrf_token": token, "source": "orders-app-db", "kind": "depends_on",
        "target": "orders-primary", "description": "reads orders"})
    assert response.status_code == 303
    html = client.get("/relationships").get_data(as_text=True)
    assert "Added: orders-app-db depends on orders-primary." in html


@pytest.mark.parametrize(("source", "target", "field", "message"), [
    ("no-such-db", "orders-primary", "source", "No asset is named “no-such-db”."),
    ("orders-primary", "", "target", "Choose an asset."),
    ("twin", "orders-primary", "source", "Several assets are named “twin”"),
    ("orders-primary", "orders-primary", "target", ""),  # a self-link: the service's message
])
def test_adding_a_link_explains_what_is_wrong(client, session, login_as, source, target, field,
                                             message):
    make_asset(session, name="orders-primary")
    make_asset(session, name="twin")
    make_asset(session, name="twin", host="other.example.com")
    login_as("analyst")
    _, token = _add_form(client)
    response = client.post("/relationships", data={"csrf_token": token, "source": source,
                                                    "kind": "depends_on", "target": target})
    assert response.status_code == 422
    error = parse(response.data).by_id(f"new-{field}-error")
    assert error is not None and message in error.text


def test_a_viewer_has_no_add_form_and_cannot_post(client, session, login_as):
    login_as("viewer")
    page, token = _add_form(client)
    assert page.by_id("add-link") is None
    assert client.post("/relationships", data={"csrf_token": token}).status_code == 403


def test_asset_name_suggestions(client, session, login_as):
    make_asset(session, name="orders-primary", host="orders.example.com")
    login_as("analyst")
    html = client.get("/relationships/asset-names?source=orders").get_data(as_text=True)
    options = parse(html).find_all("option")
    assert [o.get("value") for o in options] == ["orders-primary"]
    assert parse(html).find("datalist").get("id") == "new-source-names"
