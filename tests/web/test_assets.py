"""The inventory as a person uses it: create, search, filter, sort, page, edit (with a concurrent
edit), delete, restore, purge, tags and the connection string (SPEC §3, §5, §10)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, text, update

from tests.factories import make_asset
from tests.web.browser import HTMX, field_value, form_values
from tests.web.pages import alert_text, labelled_control, parse
from webapp.models import Asset, AuditAction, AuditEvent
from webapp.models.base import utcnow
from webapp.services import assets as asset_service
from webapp.services.actor import Actor
from webapp.services.errors import InvalidState

SECRET = "postgresql://app:Sup3r-s3cret-pw@orders-db.internal:5432/orders"


def result_names(html: str | bytes) -> list[str]:
    """Asset names in the results table, top to bottom."""
    results = parse(html).by_id("results")
    assert results is not None, "no #results block"
    names = []
    for row in results.find_all("tr"):
        cells = [c for c in row.find_all("td") if c.get("class") != "select"]  # bulk checkboxes
        if cells:
            link = cells[0].find("a")
            assert link is not None
            names.append(link.text)
    return names


def link(html: str | bytes, rel: str) -> str | None:
    found = parse(html).find("a", rel=rel)
    return found.get("href") if found is not None else None


def _path(response) -> str:  # type: ignore[no-untyped-def]
    return urlsplit(response.headers.get("Location", "")).path


def _events(session, asset_id) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(
        select(AuditEvent)
        .where(AuditEvent.entity_type == "asset", AuditEvent.entity_id == str(asset_id))
        .order_by(AuditEvent.id)
    ))


# --- create -----------------------------------------------------------------------------------

def test_create_through_the_form(client, session, login_as):
    login_as("analyst")
    form = client.get("/assets/new")
    data = form_values(form.data, "/assets/new")
    data.update({
        "name": "orders-db", "engine": "postgresql", "engine_version": "15.4",
        "host": "orders-db.internal", "port": "5432", "database_name": "orders",
        "aliases": "orders-replica.internal\r\n10.0.0.7", "environment": "production",
        "criticality": "high", "data_classification": "confidential", "owner": "payments@example.com",
        "tls_required": "yes", "backup_retention_days": "14",
        "tags": "PCI, team=payments", "connection_string": SECRET,
    })
    response = client.post("/assets/new", data=data)
    assert response.status_code == 303
    asset_id = uuid.UUID(_path(response).rsplit("/", 1)[1])
    assert _path(response) == f"/assets/{asset_id}"

    session.expire_all()
    asset = session.get(Asset, asset_id)
    assert asset.name == "orders-db" and asset.port == 5432 and asset.host == "orders-db.internal"
    assert asset.aliases == ["orders-replica.internal", "10.0.0.7"]
    assert asset.criticality.value == "high" and asset.tls_required is True
    assert asset.backup_retention_days == 14
    assert [t.name for t in asset.tags] == ["pci", "team=payments"]
    assert asset.version == 1 and asset.source == "manual"
    assert [e.action for e in _events(session, asset_id)] == [AuditAction.create]

    # the secret is stored encrypted: no column of the row, no audit event holds the plain text
    row = session.execute(text("SELECT * FROM assets WHERE name = 'orders-db'")).one()
    assert all("Sup3r-s3cret-pw" not in str(v) for v in row)
    assert asset.connection_string_encrypted and asset.connection_string_encrypted != SECRET
    assert asset_service.reveal_connection_string(session, Actor.system("test"), asset_id) == SECRET
    for changes in session.scalars(select(AuditEvent.changes)):
        assert "Sup3r-s3cret-pw" not in str(changes)

    page = client.get(f"/assets/{asset_id}")
    html = page.get_data(as_text=True)
    assert "“orders-db” created" in html
    assert parse(html).by_id("secret").find("span", class_="masked") is not None
    for url in (f"/assets/{asset_id}", f"/assets/{asset_id}/edit", f"/assets/{asset_id}/history",
                "/audit", "/assets"):
        assert "Sup3r-s3cret-pw" not in client.get(url).get_data(as_text=True), url


# --- search -----------------------------------------------------------------------------------

@pytest.fixture
def searchable(session):  # type: ignore[no-untyped-def]
    make_asset(session, name="Zephyr-Ledger")
    make_asset(session, name="by-host", host="quokka.db.internal")
    make_asset(session, name="by-alias", aliases=["narwhal-replica.example.net"])
    make_asset(session, name="by-database", database_name="wombatdb")
    make_asset(session, name="by-owner", owner="ocelot-team@example.com")
    make_asset(session, name="by-tag", tags=["Platypus"])
    make_asset(session, name="disk%full")
    make_asset(session, name="diskXfull")
    make_asset(session, name="snake_case-db")
    make_asset(session, name="snakeXcase-db")


@pytest.mark.parametrize(("term", "expected"), [
    ("zephyr", ["Zephyr-Ledger"]),  # name, case-insensitive
    ("LEDGER", ["Zephyr-Ledger"]),
    ("ledger zephyr", ["Zephyr-Ledger"]),  # every word must match, in any order
    ("QUOKKA", ["by-host"]),
    ("Narwhal", ["by-alias"]),
    ("WombatDB", ["by-database"]),
    ("ocelot", ["by-owner"]),
    ("platypus", ["by-tag"]),
    ("%", ["disk%full"]),  # % and _ are literal characters, not wildcards
    ("k%f", ["disk%full"]),
    ("e_c", ["snake_case-db"]),
    ("_", ["snake_case-db"]),
    ("no-such-thing", []),
])
def test_search_as_you_type_over_every_searched_field(client, login_as, searchable, term, expected):
    login_as("viewer")
    response = client.get("/assets", query_string={"q": term}, headers=HTMX)
    assert response.status_code == 200
    assert sorted(result_names(response.data)) == sorted(expected)
    if not expected:
        assert "No assets match these filters" in response.get_data(as_text=True)


def test_search_form_updates_as_you_type_and_pushes_the_url(client, login_as):
    login_as("viewer")
    page = parse(client.get("/assets").data)
    form = page.find("form", role="search")
    assert form is not None
    assert form.get("hx-push-url") == "true" and form.get("hx-target") == "#results"
    assert "input changed delay:300ms" in (form.get("hx-trigger") or "")
    assert form.get("method") == "get" and form.get("action") == "/assets"  # works without JS


# --- filters ----------------------------------------------------------------------------------

@pytest.fixture
def varied(session):  # type: ignore[no-untyped-def]
    make_asset(session, name="alpha", engine="postgresql", environment="production", status="active",
               criticality="high", data_classification="confidential", owner="alice@example.com",
               tags=["pci"])
    make_asset(session, name="bravo", engine="mysql", environment="staging", status="inactive",
               criticality="low", data_classification="internal", owner="bob@example.com",
               tags=["pci", "batch"])
    make_asset(session, name="charlie", engine="redis", environment="development",
               status="deprecated", criticality="critical", data_classification="restricted",
               owner="alice@example.com")


@pytest.mark.parametrize(("args", "expected"), [
    ({}, ["alpha", "bravo", "charlie"]),
    ({"engine": "mysql"}, ["bravo"]),
    ({"environment": "development"}, ["charlie"]),
    ({"status": "active"}, ["alpha"]),
    ({"criticality": "critical"}, ["charlie"]),
    ({"data_classification": "internal"}, ["bravo"]),
    ({"owner": "alice@example.com"}, ["alpha", "charlie"]),
    ({"tag": "pci"}, ["alpha", "bravo"]),
    ({"tag": "PCI"}, ["alpha", "bravo"]),
    ({"tag": "batch"}, ["bravo"]),
    ({"owner": "alice@example.com", "engine": "redis"}, ["charlie"]),
    ({"engine": "oracle"}, []),
])
def test_each_filter_narrows_the_list(client, login_as, varied, args, expected):
    login_as("viewer")
    response = client.get("/assets", query_string=args)
    assert response.status_code == 200
    assert result_names(response.data) == expected
    # the filter shows as chosen, so the page explains its own content
    for name, value in args.items():
        control = "f-" + name
        shown = field_value(response.data, control)
        assert shown == (value.lower() if name == "tag" else value)


def test_stale_filter(client, session, login_as):
    now = utcnow()
    stale = make_asset(session, name="stale")
    fresh = make_asset(session, name="fresh")
    make_asset(session, name="never-seen")
    retired = make_asset(session, name="retired-old", status="inactive")
    seen = {stale.id: now - timedelta(days=60), fresh.id: now - timedelta(days=1),
            retired.id: now - timedelta(days=60)}
    for asset_id, when in seen.items():
        # SPEC §6: stale is missed by covering scans (missed_since), not merely unseen
        missed = when if when < now - timedelta(days=30) else None
        session.execute(update(Asset).where(Asset.id == asset_id).values(last_seen_at=when, missed_since=missed))
    long_unseen = make_asset(session, name="unscanned")  # never missed by a scan that covered it
    session.execute(update(Asset).where(Asset.id == long_unseen.id).values(last_seen_at=now - timedelta(days=90)))
    session.commit()
    login_as("viewer")
    assert result_names(client.get("/assets?stale=true").data) == ["stale"]
    assert result_names(client.get("/assets?stale=false").data) == ["fresh", "never-seen",
                                                                       "retired-old", "unscanned"]
    # the `Seen by discovery` filter: labelled, reflected in the URL and the control
    for seen_arg, expected in (("stale", ["stale"]), ("unverified", ["never-seen"]),
                               ("fresh", ["fresh", "retired-old", "unscanned"])):
        response = client.get(f"/assets?seen={seen_arg}")
        assert response.status_code == 200
        assert result_names(response.data) == expected
        assert field_value(response.data, "f-seen") == seen_arg
    assert labelled_control(parse(client.get("/assets").data), "Seen by discovery").get("name") == "seen"
    partial = client.get("/assets?seen=stale", headers=HTMX)
    assert partial.status_code == 200 and result_names(partial.data) == ["stale"]
    assert client.get("/assets?seen=sometimes").status_code in (400, 422)


# --- sorting ----------------------------------------------------------------------------------

CRITICALITY_RANK = {None: 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
SORT_KEYS = {
    "name": lambda a: a.name,
    "engine": lambda a: a.engine.value,
    "environment": lambda a: a.environment.value,
    "status": lambda a: a.status.value,
    "criticality": lambda a: CRITICALITY_RANK[a.criticality.value if a.criticality else None],
    "owner": lambda a: a.owner or "",
    "host": lambda a: a.host or "",
    "updated_at": lambda a: a.updated_at,
    "created_at": lambda a: a.created_at,
}


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
@pytest.mark.parametrize("key", SORT_KEYS)
def test_sorting_by_each_column(client, session, login_as, key, descending):
    specs = [
        ("n01", "redis", "staging", "active", "low", "zed@example.com", "h5.example.com"),
        ("n02", "mysql", "production", "inactive", None, None, "h2.example.com"),
        ("n03", "postgresql", "production", "deprecated", "critical", "amy@example.com", None),
        ("n04", "mysql", "test", "active", "high", "amy@example.com", "h9.example.com"),
        ("n05", "oracle", "development", "unknown", "medium", "kim@example.com", "h2.example.com"),
        ("n06", "postgresql", "unknown", "active", "high", None, "h1.example.com"),
    ]
    made = [
        make_asset(session, name=n, engine=e, environment=env, status=s, criticality=c, owner=o,
                   host=h)
        for n, e, env, s, c, o, h in specs
    ]
    # touch two of them so updated_at order differs from created_at order
    for asset in (made[2], made[0]):
        asset_service.update(session, Actor.system("test"), asset.id, {"notes": "touched"},
                             expected_version=None)
    session.expire_all()
    assets = list(session.scalars(select(Asset)))
    expected = [a.name for a in sorted(assets, key=lambda a: (SORT_KEYS[key](a), a.id))]
    if descending:
        expected.reverse()

    login_as("viewer")
    sort = f"-{key}" if descending else key
    response = client.get("/assets", query_string={"sort": sort})
    assert response.status_code == 200
    assert result_names(response.data) == expected
    if key != "created_at":  # a sort the API offers; the table has no column for it
        header = parse(response.data).find("th", aria_sort="descending" if descending else "ascending")
        assert header is not None


def test_clicking_the_sorted_column_reverses_it(client, session, login_as):
    make_asset(session, name="aa")
    make_asset(session, name="bb")
    login_as("viewer")
    first = client.get("/assets?q=&sort=name")
    toggle = parse(first.data).find("th", aria_sort="ascending").find("a").get("href")
    assert parse_qs(urlsplit(toggle).query)["sort"] == ["-name"]
    assert result_names(client.get(toggle).data) == ["bb", "aa"]


# --- keyset pagination ------------------------------------------------------------------------

@pytest.mark.parametrize("sort", ["name", "-criticality", "owner"])
def test_pagination_visits_every_asset_once_and_goes_back(client, session, login_as, sort):
    criticalities = [None, "low", "medium", "high", "critical"]
    for i in range(120):
        make_asset(session, name=f"asset-{i:03d}", criticality=criticalities[i % 5],
                   owner=None if i % 7 == 0 else f"owner{i % 3}@example.com")
    login_as("viewer")
    url = f"/assets?sort={sort}&engine=postgresql"
    pages: list[list[str]] = []
    urls: list[str] = []
    while url:
        response = client.get(url, headers=HTMX)
        assert response.status_code == 200
        pages.append(result_names(response.data))
        urls.append(url)
        nxt = link(response.data, "next")
        if nxt:
            args = parse_qs(urlsplit(nxt).query)
            assert args["sort"] == [sort] and args["engine"] == ["postgresql"]  # state kept
        url = nxt
        assert len(pages) < 10, "pagination does not end"

    assert [len(p) for p in pages] == [50, 50, 20]
    visited = [name for page in pages for name in page]
    assert len(visited) == len(set(visited)) == 120
    assert link(client.get(urls[0]).data, "prev") is None

    # Previous from the last page shows the same second page; from the second, the first page
    for shown, before in ((2, 1), (1, 0)):
        prev = link(client.get(urls[shown]).data, "prev")
        assert prev is not None
        assert result_names(client.get(prev).data) == pages[before]
    back_to_first = link(client.get(urls[1]).data, "prev")
    assert link(client.get(back_to_first).data, "prev") is None
    assert link(client.get(back_to_first).data, "next") is not None


def test_the_url_holds_the_whole_state(client, session, login_as):
    for i in range(3):
        make_asset(session, name=f"orders-{i}", engine="mysql", tags=["pci"])
    make_asset(session, name="orders-pg", engine="postgresql")
    login_as("viewer")
    url = "/assets?q=orders&engine=mysql&tag=pci&sort=-name&limit=2"
    page = client.get(url)
    assert result_names(page.data) == ["orders-2", "orders-1"]
    assert field_value(page.data, "q") == "orders"
    assert field_value(page.data, "f-engine") == "mysql"
    assert field_value(page.data, "f-tag") == "pci"
    sort_input = parse(page.data).find("input", name="sort")
    assert sort_input is not None and sort_input.get("value") == "-name"
    nxt = link(page.data, "next")
    args = parse_qs(urlsplit(nxt).query)
    assert {k: v[0] for k, v in args.items() if k != "after"} == {
        "q": "orders", "engine": "mysql", "tag": "pci", "sort": "-name", "limit": "2",
    }
    # reloading the next page's URL (a shared link) shows the rest
    assert result_names(client.get(nxt).data) == ["orders-0"]


def test_a_rows_tag_links_to_the_list_filtered_by_it_keeping_the_other_filters(client, session, login_as):
    """The tag chips under a name: the same list with `tag` set to that tag (quoted as any query
    value), the position dropped, every other argument kept."""
    make_asset(session, name="orders-a", engine="mysql", tags=["pci", "team=payments", "x&y"])
    make_asset(session, name="orders-b", engine="mysql", tags=["pci"])
    login_as("viewer")
    page = client.get("/assets?q=orders&engine=mysql&engine=postgresql&sort=name&limit=1")  # orders-a first
    first = parse(page.data).by_id("results").find("div", class_="row-tags")
    hrefs = {a.text: a.get("href") for a in first.find_all("a", class_="tag")}
    assert set(hrefs) == {"pci", "team=payments", "x&y"}
    for name, href in hrefs.items():
        parts = urlsplit(href)
        assert parts.path == "/assets"
        assert parse_qs(parts.query) == {"q": ["orders"], "engine": ["mysql", "postgresql"], "tag": [name],
                                          "sort": ["name"], "limit": ["1"]}
    nxt = link(page.data, "next")
    after_first = client.get(nxt)  # a later page: its tag links drop the position too
    for a in parse(after_first.data).by_id("results").find_all("a", class_="tag"):
        assert "after=" not in a.get("href") and "before=" not in a.get("href")
    assert result_names(client.get(hrefs["x&y"]).data) == ["orders-a"]


# --- edit -------------------------------------------------------------------------------------

def test_edit_records_the_change_in_history_and_locks_the_field(client, session, login_as):
    asset = make_asset(session, name="ledger", owner="team-a@example.com")
    login_as("analyst")
    url = f"/assets/{asset.id}/edit"
    data = form_values(client.get(url).data, url)
    assert data["owner"] == "team-a@example.com" and data["version"] == "1"
    data["owner"] = "team-b@example.com"
    response = client.post(url, data=data)
    assert response.status_code == 303 and _path(response) == f"/assets/{asset.id}"

    session.expire_all()
    saved = session.get(Asset, asset.id)
    assert saved.owner == "team-b@example.com" and saved.version == 2
    assert "owner" in saved.locked_fields
    events = _events(session, asset.id)
    assert [e.action for e in events] == [AuditAction.create, AuditAction.update]
    # submitting the whole form changes only what the person changed
    assert events[-1].changes == {"owner": ["team-a@example.com", "team-b@example.com"],
                                  "version": [1, 2]}

    history = parse(client.get(f"/assets/{asset.id}/history").data)
    newest = history.find("ol", class_="timeline").find("li")
    row = [r for r in newest.find_all("tr") if r.find("th", scope="row")][0]
    assert row.find("th").text == "Owner"
    assert row.find("td", class_="old").text == "team-a@example.com"
    assert row.find("td", class_="new").text == "team-b@example.com"


def test_edit_conflict_shows_their_change_keeps_mine_and_loses_nothing(
    app, client, session, login_as
):
    # staging: raising a production asset's criticality to high would need approval
    asset_id = make_asset(session, name="ledger", owner="team-a@example.com", port=5432,
                          environment="staging").id
    url = f"/assets/{asset_id}/edit"
    alice = login_as("analyst")
    bob_client = app.test_client()
    bob = login_as("analyst", test_client=bob_client)

    mine = form_values(client.get(url).data, url)
    assert mine["version"] == "1"

    theirs = form_values(bob_client.get(url).data, url)
    theirs.update(criticality="high", owner="team-c@example.com")
    assert bob_client.post(url, data=theirs).status_code == 303

    mine.update(port="6432", owner="team-b@example.com")
    conflict = client.post(url, data=mine)
    assert conflict.status_code == 409
    html = conflict.get_data(as_text=True)
    assert "Someone else saved this asset while you were editing" in alert_text(parse(html))
    diff = {
        row.find("th").text: (row.find("td", class_="old").text, row.find("td", class_="new").text)
        for row in parse(html).find("table", class_="diff").find_all("tr")
        if row.find("td", class_="old") is not None
    }
    assert diff == {"Criticality": ("—", "high"),
                    "Owner": ("team-a@example.com", "team-c@example.com")}
    # my typed values are still in the form; the form now edits their version
    assert field_value(html, "port") == "6432"
    assert field_value(html, "owner") == "team-b@example.com"
    assert field_value(html, "version") == "2"
    # what only they changed is carried into my form, so saving mine does not undo theirs
    assert field_value(html, "criticality") == "high"
    session.expire_all()
    assert session.get(Asset, asset_id).version == 2  # nothing of mine written yet

    again = client.post(url, data=form_values(html, url))
    assert again.status_code == 303
    session.expire_all()
    saved = session.get(Asset, asset_id)
    assert saved.version == 3
    assert saved.port == 6432 and saved.owner == "team-b@example.com"
    assert saved.criticality.value == "high"
    events = _events(session, asset_id)
    assert [(e.action, e.actor_label) for e in events] == [
        (AuditAction.create, "test"),
        (AuditAction.update, bob.email),
        (AuditAction.update, alice.email),
    ]
    assert events[1].changes == {"criticality": [None, "high"],
                                 "owner": ["team-a@example.com", "team-c@example.com"],
                                 "version": [1, 2]}
    assert events[2].changes == {"owner": ["team-c@example.com", "team-b@example.com"],
                                 "port": [5432, 6432], "version": [2, 3]}
    history = client.get(f"/assets/{asset_id}/history").get_data(as_text=True)
    assert bob.email in history and alice.email in history


# --- delete, trash, restore, purge ------------------------------------------------------------

def test_delete_restore_and_purge(client, session, login_as):
    asset = make_asset(session, name="doomed-db")
    asset_id = asset.id
    make_asset(session, name="keeper-db")
    login_as("admin")

    deleted = client.post(f"/assets/{asset.id}/delete", data={"version": "1"})
    assert deleted.status_code == 303 and _path(deleted) == "/assets"
    assert result_names(client.get("/assets").data) == ["keeper-db"]
    assert result_names(client.get("/trash").data) == ["doomed-db"]
    assert "in trash" in client.get(f"/assets/{asset.id}").get_data(as_text=True)

    restored = client.post(f"/assets/{asset.id}/restore")
    assert restored.status_code == 303 and _path(restored) == f"/assets/{asset.id}"
    assert result_names(client.get("/assets").data) == ["doomed-db", "keeper-db"]
    assert "The trash is empty" in client.get("/trash").get_data(as_text=True)

    # only trashed assets can be purged
    refused = client.post(f"/assets/{asset.id}/purge")
    assert refused.status_code == 409
    assert "Only assets in the trash can be purged" in refused.get_data(as_text=True)

    # an htmx delete answers with a redirect the browser follows
    hx_delete = client.post(f"/assets/{asset.id}/delete", data={"version": "3"}, headers=HTMX)
    assert hx_delete.status_code == 204 and hx_delete.headers["HX-Redirect"] == "/assets"
    purged = client.post(f"/assets/{asset.id}/purge")
    assert purged.status_code == 303 and _path(purged) == "/trash"

    session.expire_all()
    assert session.get(Asset, asset_id) is None
    assert client.get(f"/assets/{asset_id}").status_code == 404
    assert [e.action for e in _events(session, asset_id)] == [
        AuditAction.create, AuditAction.delete, AuditAction.restore, AuditAction.delete,
        AuditAction.purge,
    ]
    audit_page = client.get(f"/audit?entity_id={asset_id}").get_data(as_text=True)
    assert "purge" in audit_page and "doomed-db" in audit_page


def test_delete_with_a_stale_version_is_refused(client, session, login_as):
    asset = make_asset(session, name="busy-db")
    asset_service.update(session, Actor.system("test"), asset.id, {"owner": "x@example.com"},
                         expected_version=1)
    login_as("analyst")
    response = client.post(f"/assets/{asset.id}/delete", data={"version": "1"})
    assert response.status_code == 409
    session.expire_all()
    assert session.get(Asset, asset.id).deleted_at is None


def test_editing_a_trashed_asset_is_refused(client, session, login_as):
    asset = make_asset(session, name="trashed-db", owner="old@example.com")
    login_as("analyst")
    url = f"/assets/{asset.id}/edit"
    data = form_values(client.get(url).data, url)
    assert client.post(f"/assets/{asset.id}/delete", data={"version": "1"}).status_code == 303

    for response in (client.get(url), client.post(url, data={**data, "owner": "new@example.com"})):
        assert response.status_code == 303 and _path(response) == f"/assets/{asset.id}"
    shown = client.get(f"/assets/{asset.id}").get_data(as_text=True)
    assert "This asset is in the trash. Restore it before editing." in shown
    assert 'action="/assets/' + str(asset.id) + '/tags"' not in shown  # no tag form either

    tag = client.post(f"/assets/{asset.id}/tags", data={"tag": "x"})
    assert tag.status_code == 409
    session.expire_all()
    with pytest.raises(InvalidState):
        asset_service.update(session, Actor.system("test"), asset.id, {"owner": "n@example.com"},
                             expected_version=None)
    session.expire_all()
    saved = session.get(Asset, asset.id)
    assert saved.owner == "old@example.com" and saved.tags == [] and saved.version == 2


# --- tags and the secret ----------------------------------------------------------------------

def test_add_and_remove_tags_with_htmx(client, session, login_as):
    asset = make_asset(session, name="tagged-db", tags=["pci"])
    login_as("analyst")
    added = client.post(f"/assets/{asset.id}/tags", data={"tag": "Team=Payments"}, headers=HTMX)
    html = added.get_data(as_text=True)
    assert added.status_code == 200
    assert "<html" not in html and html.strip().startswith('<div id="tags">')
    tags = [li.text.split()[0] for li in parse(html).by_id("tags").find_all("li", class_="tag")]
    assert tags == ["pci", "team=payments"]
    assert parse(html).find("form", hx_post=f"/assets/{asset.id}/tags") is not None

    removed = client.post(f"/assets/{asset.id}/tags/pci/delete", headers=HTMX)
    assert removed.status_code == 200
    tags = [li.text.split()[0]
            for li in parse(removed.data).by_id("tags").find_all("li", class_="tag")]
    assert tags == ["team=payments"]

    session.expire_all()
    saved = session.get(Asset, asset.id)
    assert [t.name for t in saved.tags] == ["team=payments"] and saved.version == 3
    assert result_names(client.get("/assets?tag=team%3Dpayments").data) == ["tagged-db"]
    assert result_names(client.get("/assets?q=payments").data) == ["tagged-db"]
    assert [e.changes["tags"] for e in _events(session, asset.id)[1:]] == [
        [["pci"], ["pci", "team=payments"]], [["pci", "team=payments"], ["team=payments"]],
    ]
    # without htmx, the same forms lead back to the asset page
    plain = client.post(f"/assets/{asset.id}/tags", data={"tag": "batch"})
    assert plain.status_code == 303 and _path(plain) == f"/assets/{asset.id}"
    assert client.post(f"/assets/{asset.id}/tags/nope/delete").status_code == 404


def test_admin_reveals_the_connection_string_and_it_is_audited(client, session, login_as):
    asset = make_asset(session, name="secret-db", connection_string=SECRET)
    admin = login_as("admin")
    before = len(_events(session, asset.id))
    shown = client.get(f"/assets/{asset.id}").get_data(as_text=True)
    assert "Sup3r-s3cret-pw" not in shown and "Reveal" in shown

    response = client.post(f"/assets/{asset.id}/reveal", headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert parse(html).by_id("secret").find("code").text == SECRET

    events = _events(session, asset.id)
    assert len(events) == before + 1
    assert events[-1].action == AuditAction.reveal_secret
    assert events[-1].actor_label == admin.email
    assert SECRET not in str(events[-1].changes) and SECRET not in (events[-1].message or "")
