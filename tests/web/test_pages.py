"""Every page answers as a whole page at its own URL, and as just its block for htmx (SPEC §5,
STYLE "htmx"). Errors render inside the app's layout, never as a traceback."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.factories import make_asset
from tests.web.pages import in_app_layout, parse

HTMX = {"HX-Request": "true"}
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}
HISTORY_RESTORE = {"HX-Request": "true", "HX-History-Restore-Request": "true"}


@dataclass(frozen=True)
class Page:
    path: Callable[[str], str]  # asset id -> URL
    role: str | None  # None: anonymous
    block_id: str  # the element the htmx block renders
    heading: str  # text a person sees in that block


PAGES = {
    "dashboard": Page(lambda a: "/", "viewer", "dashboard", "Dashboard"),
    "assets": Page(lambda a: "/assets", "viewer", "results", "asset"),
    "new asset": Page(lambda a: "/assets/new", "analyst", "asset-form", "New asset"),
    "asset": Page(lambda a: f"/assets/{a}", "viewer", "asset", "Identity and location"),
    "history": Page(lambda a: f"/assets/{a}/history", "viewer", "asset", "Initial values"),
    "asset relationships": Page(lambda a: f"/assets/{a}/relationships", "viewer",
                                "relationships-panel", "Nothing depends on it"),
    "relationships": Page(lambda a: "/relationships", "viewer", "results", "No relationships"),
    "edit": Page(lambda a: f"/assets/{a}/edit", "analyst", "asset-form", "Edit asset"),
    "trash": Page(lambda a: "/trash", "viewer", "results", "trash"),
    "audit": Page(lambda a: "/audit", "viewer", "results", "create"),
    "review queue": Page(lambda a: "/conflicts", "viewer", "queue", "No open items"),
    "users": Page(lambda a: "/admin/users", "admin", "users", "Add a user"),
    "settings": Page(lambda a: "/admin/settings", "admin", "settings", "Settings"),
    "tasks": Page(lambda a: "/admin/tasks", "admin", "tasks", "Scheduled tasks"),
    "account": Page(lambda a: "/account", "viewer", "account", "Change password"),
    "login": Page(lambda a: "/login", None, "login", "Sign in"),
}


@pytest.fixture
def page_url(session, login_as, make_user):  # type: ignore[no-untyped-def]
    """Sign in with the page's role (or stay anonymous) and return its URL."""

    def prepare(page: Page) -> str:
        asset = make_asset(session, name="orders-db", tags=["pci"])
        if page.role is None:
            make_user("admin")  # someone exists, so there is no first-run redirect
        else:
            login_as(page.role)
        return page.path(str(asset.id))

    return prepare


def _nav(html: str) -> bool:
    nav = parse(html).find("nav", aria_label="Main")
    return nav is not None and "Assets" in nav.text and "Audit" in nav.text


@pytest.mark.parametrize("name", PAGES)
def test_full_page_renders_in_the_layout(client, page_url, name):
    page = PAGES[name]
    response = client.get(page_url(page))
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    assert "<html" in html
    assert in_app_layout(html)
    if page.role is not None:
        assert _nav(html), "signed-in pages show the main navigation"
    block = parse(html).by_id(page.block_id)
    assert block is not None and page.heading in block.text
    assert "HX-Request" in response.headers.get("Vary", "")


@pytest.mark.parametrize("name", PAGES)
def test_htmx_request_gets_only_the_block(client, page_url, name):
    page = PAGES[name]
    response = client.get(page_url(page), headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    assert "<html" not in html
    assert 'class="brand"' not in html and 'aria-label="Main"' not in html
    assert f'id="{page.block_id}"' in html
    block = parse(html).by_id(page.block_id)
    assert block is not None and page.heading in block.text
    assert "HX-Request" in response.headers.get("Vary", "")


@pytest.mark.parametrize("name", ["assets", "asset", "audit", "trash", "edit"])
@pytest.mark.parametrize("headers", [BOOSTED, HISTORY_RESTORE], ids=["boosted", "history-restore"])
def test_boosted_and_history_restore_requests_get_the_full_page(client, page_url, name, headers):
    page = PAGES[name]
    response = client.get(page_url(page), headers=headers)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" in html and in_app_layout(html) and _nav(html)
    assert "HX-Request" in response.headers.get("Vary", "")


def test_setup_page_full_and_partial_when_no_user_exists(client):
    full = client.get("/setup")
    html = full.get_data(as_text=True)
    assert full.status_code == 200
    assert "<html" in html and in_app_layout(html)
    assert "Create the first administrator account" in parse(html).by_id("setup").text
    assert "HX-Request" in full.headers.get("Vary", "")

    partial = client.get("/setup", headers=HTMX)
    fragment = partial.get_data(as_text=True)
    assert partial.status_code == 200
    assert "<html" not in fragment and 'id="setup"' in fragment
    assert "Create the first administrator account" in fragment
    assert "HX-Request" in partial.headers.get("Vary", "")


def test_assets_partial_is_the_result_table_without_the_filter_form(client, session, login_as):
    make_asset(session, name="billing-db")
    login_as("viewer")
    fragment = client.get("/assets?q=billing", headers=HTMX).get_data(as_text=True)
    assert 'role="search"' not in fragment  # the search box keeps focus: it is not re-rendered
    assert "billing-db" in fragment and "1 asset matching" in fragment


# --- error pages ------------------------------------------------------------------------------

def _assert_error_page(response, status: int, text: str) -> None:  # type: ignore[no-untyped-def]
    html = response.get_data(as_text=True)
    assert response.status_code == status, html
    assert in_app_layout(html), "error pages use the app's layout"
    assert "Traceback" not in html and "File \"" not in html
    error = parse(html).by_id("error")
    assert error is not None and text in error.text


def test_forbidden_page_in_layout(client, login_as):
    login_as("viewer")
    _assert_error_page(client.get("/assets/new"), 403, "needs the analyst role")
    _assert_error_page(client.get("/admin/users"), 403, "needs the admin role")


@pytest.mark.parametrize("suffix", ["", "/history", "/edit"])
def test_unknown_and_malformed_asset_ids_are_404(client, login_as, suffix):
    login_as("analyst")
    _assert_error_page(client.get(f"/assets/{uuid.uuid4()}{suffix}"), 404, "No such asset")
    _assert_error_page(client.get(f"/assets/not-a-uuid{suffix}"), 404, "No such asset")
    _assert_error_page(client.get(f"/assets/{'9' * 40}{suffix}"), 404, "No such asset")


def test_unknown_address_is_404_in_layout(client, login_as):
    login_as("viewer")
    _assert_error_page(client.get("/no/such/page"), 404, "There is nothing at this address")


def test_unprocessable_request_is_422_in_layout(client, session, login_as):
    asset = make_asset(session)
    login_as("analyst")
    response = client.post(f"/assets/{asset.id}/tags", data={"tag": "   "})
    _assert_error_page(response, 422, "Enter a tag name")
    _assert_error_page(client.get("/trash?after=garbage"), 422, "page link is not valid")


def test_error_block_for_htmx_is_a_fragment_with_the_message(client, login_as):
    login_as("viewer")
    response = client.get(f"/assets/{uuid.uuid4()}", headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "<html" not in html and "No such asset" in html
    assert "HX-Request" in response.headers.get("Vary", "")


def test_no_form_renders_an_attribute_as_none(client, login_as, make_user):
    """WTForms renders a None attribute value as the text "None" (aria-invalid="None")."""
    assert '="None"' not in client.get("/setup").get_data(as_text=True)
    make_user("viewer")
    assert '="None"' not in client.get("/login").get_data(as_text=True)
    login_as("admin")
    for url in ("/assets/new", "/admin/users", "/admin/settings", "/account", "/account/tokens",
                "/imports", "/assets"):
        html = client.get(url).get_data(as_text=True)
        assert '="None"' not in html, url
    invalid = client.post("/assets/new", data={"name": "", "engine": "mysql"}).get_data(as_text=True)
    assert 'aria-invalid="true"' in invalid and '="None"' not in invalid


def test_bidi_controls_in_a_name_are_shown_not_obeyed(client, session, login_as):
    """U+202E (right-to-left override) would make "invoice\\u202efdp.exe" read as
    "invoiceexe.pdf"; pages name the control instead, and the stored value is untouched."""
    from tests.factories import make_asset

    asset = make_asset(session, name="invoice\u202efdp.exe", notes="a\u2066b\u2069c")
    login_as("analyst")
    for url in ("/assets", f"/assets/{asset.id}", f"/assets/{asset.id}/history", "/audit"):
        html = client.get(url).get_data(as_text=True)
        assert "\u202e" not in html and "\u2066" not in html, url
    assert "invoice[U+202E]fdp.exe" in client.get("/assets").get_data(as_text=True)
    assert "a[U+2066]b[U+2069]c" in client.get(f"/assets/{asset.id}").get_data(as_text=True)
    edit = client.get(f"/assets/{asset.id}/edit").get_data(as_text=True)
    assert 'value="invoice\u202efdp.exe"' in edit  # the form edits the real value
    session.expire_all()
    assert session.get(type(asset), asset.id).name == "invoice\u202efdp.exe"
