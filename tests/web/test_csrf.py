"""CSRF on every form and htmx request (SPEC §9): refused without the token, nothing written;
accepted with the token htmx sends as `X-CSRFToken` from the page's `<meta>` tag."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD
from tests.factories import make_asset
from tests.web.pages import form_csrf_token, in_app_layout, meta_csrf_token
from webapp import create_app
from webapp.extensions import db as _db
from webapp.models import Asset, AuditAction, AuditEvent, User
from webapp.services import auth as auth_service
from webapp.services.actor import Actor

REFUSAL = "The form was not sent from this site or has expired"


@pytest.fixture
def csrf_app(app_config):  # type: ignore[no-untyped-def]
    # No app context stays pushed across requests here: each request gets its own `g` and
    # database session, as in production (a shared `g` would cache one CSRF token forever).
    app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


@contextmanager
def database(app):  # type: ignore[no-untyped-def]
    """A fresh session on the app's database, outside any request."""
    with app.app_context():
        yield _db.session


def _make_user(app, email: str, role: str) -> None:  # type: ignore[no-untyped-def]
    with database(app) as session:
        auth_service.create_user(session, Actor.system("test"), email=email, password=PASSWORD,
                                 role=role)


def _make_asset(app):  # type: ignore[no-untyped-def]
    with database(app) as session:
        asset = make_asset(session)
        return asset.id, asset.version


@pytest.fixture
def browser(csrf_app):  # type: ignore[no-untyped-def]
    """A test client signed in as an admin through the real login form (token included)."""
    _make_user(csrf_app, "admin@example.com", "admin")
    client = csrf_app.test_client()
    token = form_csrf_token(client.get("/login").data)
    response = client.post("/login", data={"email": "admin@example.com", "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 302, response.data
    return client


def _counts(app) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    """Assets, assets in the trash, users, audit events."""
    with database(app) as session:
        count = lambda model: session.scalar(select(func.count()).select_from(model))  # noqa: E731
        trashed = session.scalar(
            select(func.count()).select_from(Asset).where(Asset.deleted_at.is_not(None))
        )
        return count(Asset), trashed, count(User), count(AuditEvent)


def _asset_form(name: str) -> dict[str, str]:
    return {"name": name, "engine": "postgresql", "host": "db.example.com", "port": "5432",
            "environment": "production", "status": "active"}


def _token(client) -> str:  # type: ignore[no-untyped-def]
    """The token as htmx reads it: from the <meta> tag of the page the user is on."""
    return meta_csrf_token(client.get("/assets").data)


def _refused(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert REFUSAL in body and "Reload the page and try again" in body
    assert in_app_layout(response.data)


@pytest.mark.parametrize("target", ["create-asset", "delete-asset", "logout", "create-user"])
@pytest.mark.parametrize("how", ["no-token", "wrong-token"])
def test_post_without_a_valid_token_is_refused_and_writes_nothing(csrf_app, browser, target, how):
    asset_id, version = _make_asset(csrf_app)
    requests = {
        "create-asset": ("/assets/new", _asset_form("sneaky-db")),
        "delete-asset": (f"/assets/{asset_id}/delete", {"version": str(version)}),
        "logout": ("/logout", {}),
        "create-user": ("/admin/users", {"email": "sneaky@example.com", "password": PASSWORD,
                                         "role": "admin"}),
    }
    path, data = requests[target]
    headers = {"X-CSRFToken": "forged-token"} if how == "wrong-token" else {}
    if how == "wrong-token":
        data = {**data, "csrf_token": "forged-token"}
    before = _counts(csrf_app)

    _refused(browser.post(path, data=data, headers=headers))

    assert _counts(csrf_app) == before
    assert browser.get("/").status_code == 200, "still signed in: logout did not happen"


def test_htmx_style_refusal_is_readable_too(csrf_app, browser):
    asset_id, _ = _make_asset(csrf_app)
    before = _counts(csrf_app)
    response = browser.post(f"/assets/{asset_id}/delete", headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert REFUSAL in response.get_data(as_text=True)
    assert _counts(csrf_app) == before


def test_create_asset_with_the_header_token_succeeds(csrf_app, browser):
    token = _token(browser)
    before = _counts(csrf_app)
    response = browser.post("/assets/new", data=_asset_form("orders-prod"),
                            headers={"X-CSRFToken": token})
    assert response.status_code == 303, response.data
    with database(csrf_app) as session:
        created = session.scalar(select(Asset).where(Asset.name == "orders-prod"))
        assert created is not None
        assert response.headers["Location"].endswith(f"/assets/{created.id}")
    assets, _, _, events = _counts(csrf_app)
    assert (assets, events) == (before[0] + 1, before[3] + 1)


def test_htmx_delete_with_the_header_token_succeeds(csrf_app, browser):
    asset_id, version = _make_asset(csrf_app)
    token = meta_csrf_token(browser.get(f"/assets/{asset_id}").data)
    response = browser.post(f"/assets/{asset_id}/delete", data={"version": str(version)},
                            headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/assets"
    with database(csrf_app) as session:
        assert session.get(Asset, asset_id).deleted_at is not None
        last = session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
        assert last.action == AuditAction.delete and last.entity_id == str(asset_id)


def test_create_user_with_the_header_token_succeeds(csrf_app, browser):
    token = meta_csrf_token(browser.get("/admin/users").data)
    response = browser.post("/admin/users", headers={"X-CSRFToken": token}, data={
        "email": "new.analyst@example.com", "password": PASSWORD, "role": "analyst",
    })
    assert response.status_code == 303, response.data
    with database(csrf_app) as session:
        user = session.scalar(select(User).where(User.email == "new.analyst@example.com"))
        assert user is not None and user.role.value == "analyst"


def test_logout_with_the_header_token_signs_out(csrf_app, browser):
    token = _token(browser)
    response = browser.post("/logout", headers={"X-CSRFToken": token})
    assert response.status_code == 302
    assert browser.get("/").status_code == 302
    with database(csrf_app) as session:
        assert session.scalar(
            select(func.count()).select_from(AuditEvent)
            .where(AuditEvent.action == AuditAction.logout)
        ) == 1


def test_the_token_in_a_form_field_works_as_well(csrf_app, browser):
    token = form_csrf_token(browser.get("/assets/new").data)
    response = browser.post("/assets/new", data={**_asset_form("ledger-prod"), "csrf_token": token})
    assert response.status_code == 303
    with database(csrf_app) as session:
        assert session.scalar(select(Asset).where(Asset.name == "ledger-prod")) is not None


def test_login_form_without_a_token_is_refused(csrf_app):
    _make_user(csrf_app, "v@example.com", "viewer")
    client = csrf_app.test_client()
    before = _counts(csrf_app)
    _refused(client.post("/login", data={"email": "v@example.com", "password": PASSWORD}))
    assert _counts(csrf_app) == before
    assert client.get("/").status_code == 302
