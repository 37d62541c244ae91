"""The database down: the app's own 503 page and a problem+json 503, both with Retry-After, and
recovery without a restart (SPEC §10). The real PostgreSQL is reached through a forwarder that
the test cuts and restores. Also: the error pages never need the database to render."""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import PASSWORD, IsolatedClient, base_config
from tests.factories import make_asset
from tests.tcp_proxy import TcpProxy
from webapp import create_app
from webapp.extensions import db as _db
from webapp.services import auth as auth_service
from webapp.services import tokens as token_service
from webapp.services.actor import Actor

MESSAGE = "The database is not answering; try again shortly"


@pytest.fixture
def proxied(database_url, require_postgres):  # type: ignore[no-untyped-def]
    """An app whose database connections go through a TcpProxy; the proxy and the app."""
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    app = create_app(base_config(url.set(host="127.0.0.1", port=proxy.port)
                                 .render_as_string(hide_password=False)))
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield proxy, app
        _db.session.remove()
        _db.engine.dispose()
    proxy.cut()


@pytest.mark.postgres
def test_pages_and_api_answer_503_while_the_database_is_down_and_recover(proxied):
    proxy, app = proxied
    actor = Actor.system("test")
    user = auth_service.create_user(_db.session, actor, email="ops@example.com",
                                    password=PASSWORD, role="admin")
    _, secret = token_service.create(_db.session, actor, user, name="probe")
    email = user.email
    make_asset(_db.session, name="orders-db")
    _db.session.remove()
    browser, api = app.test_client(), app.test_client()
    bearer = {"Authorization": f"Bearer {secret}"}
    assert browser.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302
    assert browser.get("/assets").status_code == 200

    proxy.cut()
    page = browser.get("/assets")
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert MESSAGE in page.get_data(as_text=True) and page.headers["Retry-After"]
    anonymous = app.test_client().get("/login")
    assert anonymous.status_code == 503 and MESSAGE in anonymous.get_data(as_text=True)
    missing = browser.get("/assets/not-an-id")  # a 404's layout needs the user: still the 503
    assert missing.status_code == 503
    answer = api.get("/api/v1/assets", headers=bearer)
    assert answer.status_code == 503 and answer.mimetype == "application/problem+json"
    assert answer.get_json()["status"] == 503 and answer.headers["Retry-After"]
    assert api.get("/readyz").status_code == 503

    proxy.restore()
    assert "orders-db" in browser.get("/assets").get_data(as_text=True)
    assert api.get("/api/v1/assets", headers=bearer).get_json()["items"][0]["name"] == "orders-db"


def test_the_500_page_renders_after_a_failed_transaction(app, client, login_as):
    """A database error leaves the session needing a rollback; the error page must not query
    through it (it used to, via the navigation's role check, and the server sent a bare page)."""
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from webapp.models import Tag, User

    @app.route("/boom")
    def boom():  # type: ignore[no-untyped-def]
        _db.session.add_all([Tag(name="twice"), Tag(name="twice")])
        with contextlib.suppress(IntegrityError):  # swallowed by mistake: needs a rollback
            _db.session.flush()
        _db.session.scalar(select(User).limit(1))  # PendingRollbackError
        return "unreachable"

    login_as("admin")
    response = client.get("/boom")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.get_data(as_text=True)
    assert client.get("/assets").status_code == 200  # the next request is fine


@pytest.mark.postgres
def test_the_503_page_is_the_apps_own_for_a_signed_in_browser_too(proxied):
    """With a session cookie the layout would load the user; the 503 page must not."""
    proxy, app = proxied
    user = auth_service.create_user(_db.session, Actor.system("test"), email="ops@example.com",
                                    password=PASSWORD, role="viewer")
    email = user.email
    _db.session.remove()
    browser = app.test_client()
    assert browser.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302
    proxy.cut()
    for url in ("/assets", "/favicon.ico"):  # a page, and a 404 whose layout needs the user
        page = browser.get(url)
        html = page.get_data(as_text=True)
        assert page.status_code == 503 and MESSAGE in html, url
        assert 'href="/static/css/app.css"' in html and "Asset Inventory</a>" in html, url  # the app's layout
