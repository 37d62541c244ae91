"""Sign-in, first-run setup, lockout, sessions, passwords and security headers (SPEC §9)."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import func, select, update

from tests.conftest import PASSWORD
from tests.web.pages import alert_text, field_messages, labelled_control, parse
from webapp.models import AuditAction, AuditEvent, LoginThrottle, User
from webapp.models.base import utcnow

NEW_PASSWORD = "a much longer new passphrase"


def _path(response) -> str:  # type: ignore[no-untyped-def]
    return urlsplit(response.headers.get("Location", "")).path


def _login(client, email: str, password: str = PASSWORD, **kwargs):  # type: ignore[no-untyped-def]
    return client.post("/login", data={"email": email, "password": password}, **kwargs)


def _signed_in(client) -> bool:  # type: ignore[no-untyped-def]
    response = client.get("/")
    if response.status_code == 200:
        return True
    assert response.status_code == 302 and _path(response) == "/login", response.status_code
    return False


def _audit_rows(session, action: AuditAction) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
    )


def _comparable(response, email: str) -> str:  # type: ignore[no-untyped-def]
    """A page's HTML without what differs per browser (CSRF token) or per attempt (the address)."""
    body = response.get_data(as_text=True).replace(email, "EMAIL")
    return re.sub(r'(name="csrf-token" content=)"[^"]*"', r"\1", body)


def _user_count(session) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).select_from(User))


# --- first-run setup --------------------------------------------------------------------------

def test_setup_creates_the_first_admin_and_signs_them_in(client, session):
    first = client.get("/")
    assert first.status_code == 302 and _path(first) == "/setup"
    page = client.get("/setup")
    assert page.status_code == 200
    assert "Create admin account" in page.get_data(as_text=True)

    response = client.post("/setup", data={
        "name": "Ada", "email": "Ada@Example.com", "password": PASSWORD, "confirm": PASSWORD,
    })
    assert response.status_code == 302 and _path(response) == "/"
    home = client.get("/")
    assert home.status_code == 200
    body = home.get_data(as_text=True)
    assert "ada@example.com" in body and "Sign out" in body
    admin = session.scalar(select(User))
    assert admin.email == "ada@example.com" and admin.role.value == "admin"

    # once a user exists, the setup page is gone for everyone
    assert client.get("/setup").status_code == 404
    again = client.post("/setup", data={
        "email": "mallory@example.com", "password": PASSWORD, "confirm": PASSWORD,
    })
    assert again.status_code == 404
    assert _setup_status_for_a_new_browser(client) == 404
    assert _user_count(session) == 1


def _setup_status_for_a_new_browser(client) -> int:  # type: ignore[no-untyped-def]
    """/setup as seen by a different, anonymous browser."""
    other = client.application.test_client()
    return other.get("/setup").status_code


def test_setup_is_gone_once_any_user_exists(client, make_user, session):
    make_user("viewer")
    assert client.get("/setup").status_code == 404
    response = client.post("/setup", data={
        "email": "late@example.com", "password": PASSWORD, "confirm": PASSWORD,
    })
    assert response.status_code == 404
    assert _user_count(session) == 1
    assert not _signed_in(client)


def test_setup_refuses_a_short_password_next_to_the_field(client, session):
    response = client.post("/setup", data={
        "email": "ada@example.com", "password": "short-pw", "confirm": "short-pw",
    })
    assert response.status_code == 422
    assert "at least 12 characters" in field_messages(parse(response.data), "password")
    assert _user_count(session) == 0


# --- the login page -----------------------------------------------------------------------------

def test_login_page_has_labelled_fields_and_a_sign_in_button(client, make_user):
    make_user("viewer")
    response = client.get("/login")
    assert response.status_code == 200
    page = parse(response.data)
    email = labelled_control(page, "Email")
    password = labelled_control(page, "Password")
    assert email.tag == "input" and email.get("name") == "email"
    assert password.tag == "input" and password.get("type") == "password"
    assert password.get("name") == "password"
    buttons = [b.text for b in page.find_all("button")] + [
        i.get("value") for i in page.find_all("input") if i.get("type") == "submit"
    ]
    assert "Sign in" in buttons


def test_wrong_password_and_unknown_email_look_exactly_the_same(client, make_user):
    user = make_user("viewer")
    wrong = _login(client, user.email, "not the right password")
    unknown = _login(client, "nobody-here@example.com", "not the right password")
    assert wrong.status_code == unknown.status_code == 401
    message = alert_text(parse(wrong.data))
    assert message == alert_text(parse(unknown.data)) == "Invalid email or password."
    # the whole page is identical apart from the address typed
    assert _comparable(wrong, user.email) == _comparable(unknown, "nobody-here@example.com")
    assert not _signed_in(client)


def test_successful_login_redirects_to_the_dashboard(client, make_user):
    user = make_user("viewer")
    response = _login(client, user.email.upper())  # addresses are case-insensitive
    assert response.status_code == 302 and _path(response) == "/"
    assert _signed_in(client)


# --- throttling and lockout ---------------------------------------------------------------------

def _fail_until_locked(client, email: str, limit: int) -> list:  # type: ignore[no-untyped-def]
    return [_login(client, email, f"wrong password {i}") for i in range(limit)]


def test_account_is_locked_temporarily_after_too_many_failures(app, client, make_user, session):
    limit = app.config["LOGIN_MAX_FAILURES"]
    user = make_user("viewer")
    responses = _fail_until_locked(client, user.email, limit)
    assert [r.status_code for r in responses[:-1]] == [401] * (limit - 1)
    locked = responses[-1]
    assert locked.status_code == 429
    locked_message = alert_text(parse(locked.data))
    assert "Too many failed sign-ins" in locked_message

    # even the right password is refused while locked
    refused = _login(client, user.email)
    assert refused.status_code == 429
    assert alert_text(parse(refused.data)) == locked_message
    assert not _signed_in(client)

    # an address with no account locks out the same way: nothing tells them apart
    other = app.test_client()
    ghost = _fail_until_locked(other, "ghost@example.com", limit)
    assert [r.status_code for r in ghost] == [r.status_code for r in responses]
    assert alert_text(parse(ghost[-1].data)) == locked_message
    assert _comparable(ghost[-1], "ghost@example.com") == _comparable(locked, user.email)

    # the lock is temporary: once the lockout period has passed, the right password works
    session.execute(update(LoginThrottle).values(locked_until=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert _login(client, user.email).status_code == 302
    assert _signed_in(client)


def test_many_addresses_from_one_ip_lock_that_ip(app, client, make_user):
    limit = app.config["LOGIN_IP_MAX_FAILURES"]
    user = make_user("viewer")
    attacker = {"REMOTE_ADDR": "198.51.100.23"}
    statuses = [
        _login(client, f"guess{i}@example.com", "not the password", environ_base=attacker).status_code
        for i in range(limit)
    ]
    assert statuses == [401] * (limit - 1) + [429]
    # from that IP even a real account with the right password is refused for now
    blocked = _login(client, user.email, environ_base=attacker)
    assert blocked.status_code == 429
    assert "Too many failed sign-ins" in alert_text(parse(blocked.data))
    # the account itself is not locked: the same user signs in from elsewhere
    elsewhere = app.test_client()
    assert _login(elsewhere, user.email, environ_base={"REMOTE_ADDR": "192.0.2.10"}).status_code == 302


def test_lockout_is_audited(app, client, make_user, session):
    limit = app.config["LOGIN_MAX_FAILURES"]
    user = make_user("viewer")
    env = {"REMOTE_ADDR": "203.0.113.5"}
    for i in range(limit):
        _login(client, user.email, f"wrong {i}", environ_base=env)
    _login(client, user.email, environ_base=env)  # refused while locked
    rows = _audit_rows(session, AuditAction.login_failed)
    assert len(rows) == limit + 1
    lock_rows = [r for r in rows if r.message and "locked" in r.message]
    assert lock_rows, [r.message for r in rows]
    first_lock = lock_rows[0]
    assert first_lock.id == rows[limit - 1].id  # the failure that triggered the lock says so
    assert first_lock.actor_label == user.email and first_lock.ip == "203.0.113.5"
    assert first_lock.entity_id == str(user.id)
    assert "locked" in (rows[-1].message or "")  # the refused attempt is recorded too


def test_login_logout_and_failures_are_audited_with_who_where_and_which_request(client, make_user, session):
    user = make_user("analyst")
    env = {"REMOTE_ADDR": "192.0.2.44"}
    ua = "Mozilla/5.0 (X11; Linux x86_64) InventoryTest/1.0"

    _login(client, user.email, "wrong password!!", environ_base=env,
           headers={"User-Agent": ua, "X-Request-ID": "req-failed-1"})
    _login(client, user.email, environ_base=env,
           headers={"User-Agent": ua, "X-Request-ID": "req-login-1"})
    client.post("/logout", environ_base=env, headers={"User-Agent": ua, "X-Request-ID": "req-logout-1"})

    (failed,) = _audit_rows(session, AuditAction.login_failed)
    (login,) = _audit_rows(session, AuditAction.login)
    (logout,) = _audit_rows(session, AuditAction.logout)
    assert failed.actor_label == user.email and failed.actor_id is None
    assert (failed.ip, failed.user_agent, failed.request_id) == ("192.0.2.44", ua, "req-failed-1")
    for row, request_id in ((login, "req-login-1"), (logout, "req-logout-1")):
        assert row.actor_id == user.id and row.actor_label == user.email
        assert (row.ip, row.user_agent, row.request_id) == ("192.0.2.44", ua, request_id)
        assert row.entity_id == str(user.id)


# --- sessions -----------------------------------------------------------------------------------

def test_logout_invalidates_the_session_on_the_server(app, client, make_user):
    user = make_user("viewer")
    assert _login(client, user.email).status_code == 302
    stolen = client.get_cookie("session")
    assert stolen is not None

    replay = app.test_client()
    replay.set_cookie("session", stolen.value)
    assert _signed_in(replay), "a copied cookie works while the session is live"

    response = client.post("/logout")
    assert response.status_code == 302 and _path(response) == "/login"
    assert not _signed_in(client)

    replay_after = app.test_client()
    replay_after.set_cookie("session", stolen.value)
    assert not _signed_in(replay_after), "the old cookie must not work after logout"


def test_password_change_signs_out_every_other_session(app, client, make_user):
    user = make_user("analyst")
    laptop, phone = client, app.test_client()
    assert _login(laptop, user.email).status_code == 302
    assert _login(phone, user.email).status_code == 302
    assert _signed_in(phone)

    response = laptop.post("/account", data={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD,
    })
    assert response.status_code == 302 and _path(response) == "/login"
    assert not _signed_in(phone)
    assert not _signed_in(laptop)
    assert _login(app.test_client(), user.email).status_code == 401
    assert _login(app.test_client(), user.email, NEW_PASSWORD).status_code == 302


def test_password_change_refuses_a_short_password_next_to_the_field(app, client, make_user):
    user = make_user("analyst")
    _login(client, user.email)
    response = client.post("/account", data={"current_password": PASSWORD, "new_password": "too-short"})
    assert response.status_code == 422
    assert "at least 12 characters" in field_messages(parse(response.data), "new_password")
    wrong_current = client.post("/account", data={
        "current_password": "not my password", "new_password": NEW_PASSWORD,
    })
    assert wrong_current.status_code == 422
    assert "not your current password" in field_messages(parse(wrong_current.data), "current_password")
    assert _signed_in(client)
    assert _login(app.test_client(), user.email).status_code == 302  # old password still valid


def test_admin_cannot_create_a_user_with_a_short_password(client, login_as, session):
    login_as("admin")
    before = _user_count(session)
    response = client.post("/admin/users", data={
        "email": "new@example.com", "password": "elevenchars", "role": "viewer",
    })
    assert response.status_code == 422
    assert "at least 12 characters" in field_messages(parse(response.data), "password")
    assert _user_count(session) == before


def test_password_hash_is_argon2id_at_owasp_strength(client, session):
    client.post("/setup", data={"email": "ada@example.com", "password": PASSWORD, "confirm": PASSWORD})
    stored = session.scalar(select(User.password_hash))
    assert stored.startswith("$argon2id$")
    params = dict(p.split("=") for p in re.search(r"\$m=[^$]+", stored).group(0)[1:].split(","))
    assert int(params["m"]) >= 19456
    assert int(params["t"]) >= 2
    assert int(params["p"]) >= 1
    assert PASSWORD not in stored


def test_session_cookie_is_httponly_and_samesite_lax(client, make_user):
    user = make_user("viewer")
    response = _login(client, user.email)
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, response.headers
    attributes = {a.strip().split("=")[0].lower(): a.strip() for a in cookies[-1].split(";")[1:]}
    assert "httponly" in attributes
    assert attributes.get("samesite", "").lower() == "samesite=lax"


# --- security headers ---------------------------------------------------------------------------

def _directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


def _check_headers(response) -> None:  # type: ignore[no-untyped-def]
    csp = response.headers.get("Content-Security-Policy")
    assert csp, f"no CSP on {response.request.path} ({response.status_code})"
    directives = _directives(csp)
    scripts = directives.get("script-src", directives.get("default-src"))
    assert scripts is not None, csp
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
    assert response.headers.get("X-Frame-Options") == "DENY"
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("Referrer-Policy") not in (None, "", "unsafe-url")


@pytest.mark.parametrize("method,path,data", [
    ("GET", "/login", None),
    ("POST", "/login", {"email": "x@example.com", "password": "wrong password"}),
    ("POST", "/login", {}),
    ("GET", "/", None),
    ("GET", "/no-such-page", None),
    ("GET", "/setup", None),
    ("GET", "/static/css/app.css", None),
    ("GET", "/static/js/app.js", None),
], ids=["login-page", "login-failed", "login-invalid", "redirect", "404", "setup-404", "css", "js"])
def test_anonymous_responses_carry_security_headers(client, make_user, method, path, data):
    make_user("viewer")
    with client.open(path, method=method, data=data) as response:
        _check_headers(response)


def test_signed_in_pages_and_errors_carry_security_headers(client, login_as):
    login_as("viewer")
    for path in ("/", "/assets", "/audit", "/trash", "/account", "/admin/users"):
        response = client.get(path)
        assert response.status_code in (200, 403), path
        _check_headers(response)
    _check_headers(client.get("/assets", headers={"HX-Request": "true"}))
    _check_headers(client.post("/logout"))


def test_pages_have_no_inline_scripts_so_the_csp_does_not_break_them(client, login_as):
    login_as("admin")
    for path in ("/login", "/", "/assets", "/assets/new", "/audit", "/admin/users", "/account"):
        response = client.get(path)
        page = parse(response.data)
        for script in page.find_all("script"):
            assert script.get("src"), f"inline <script> on {path}"
        assert not re.search(rb"\son[a-z]+\s*=", response.data), f"inline event handler on {path}"


# --- open redirects -----------------------------------------------------------------------------

@pytest.mark.parametrize("target", [
    "//evil.example",
    "https://evil.example",
    "//evil.example/%2F..",
    "/\\evil.example",
    "\\\\evil.example",
    "https:evil.example",
    "/\t/evil.example",
], ids=["protocol-relative", "absolute", "protocol-relative-path", "backslash", "double-backslash",
        "scheme-no-slashes", "tab"])
def test_login_does_not_follow_next_off_site(client, make_user, target):
    user = make_user("viewer")
    response = client.post("/login", query_string={"next": target},
                           data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    # resolve the Location the way a browser does: backslashes are slashes, tabs and newlines vanish
    location = re.sub(r"[\t\n\r]", "", response.headers["Location"]).replace("\\", "/")
    landed = urlsplit(urljoin("http://localhost/login", location))
    assert landed.netloc == "localhost", response.headers["Location"]


def test_login_follows_a_local_next(client, make_user):
    user = make_user("viewer")
    response = client.post("/login", query_string={"next": "/assets?q=orders"},
                           data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/assets?q=orders"


def test_anonymous_visit_is_sent_to_login_and_back(client, make_user):
    user = make_user("viewer")
    response = client.get("/audit")
    assert response.status_code == 302 and _path(response) == "/login"
    login_page = client.get(response.headers["Location"])
    form = parse(login_page.data).find("form")
    assert form is not None
    back = client.post(form.get("action"), data={"email": user.email, "password": PASSWORD})
    assert back.status_code == 302 and back.headers["Location"] == "/audit"


def test_admin_sees_a_locked_account_on_the_users_page(client, make_user, login_as):
    target = make_user("viewer", email="locked-out@example.com")
    for _ in range(5):
        client.post("/login", data={"email": target.email, "password": "wrong password here"})
    login_as("admin")
    page = client.get("/admin/users").get_data(as_text=True)
    row = page[page.index("locked-out@example.com"):][:600]
    assert "locked until" in row
    assert "5 failed sign-ins since the last success" in row


# --- the last active admin ----------------------------------------------------------------------

def test_the_last_admin_cannot_demote_or_deactivate_themselves_on_the_web(client, login_as, session):
    me = login_as("admin")
    for data, field in (({"role": "analyst", "active": "y"}, "Role"), ({"role": "admin"}, "Active")):
        response = client.post(f"/admin/users/{me.id}", data=data)
        assert response.status_code == 422
        text = response.get_data(as_text=True)
        assert "is the last active admin. Make another user an admin first." in text and field in text
    session.expire_all()
    me = session.get(User, me.id)
    assert me.role.value == "admin" and me.active
    assert not _audit_rows(session, AuditAction.update)


def test_with_a_second_admin_the_first_may_step_down(client, login_as, make_user, session):
    me = login_as("admin")
    make_user("admin")
    assert client.post(f"/admin/users/{me.id}", data={"role": "analyst", "active": "y"}).status_code == 303
    session.expire_all()
    assert session.get(User, me.id).role.value == "analyst"


def test_an_inactive_admin_does_not_count(client, login_as, make_user, session):
    from webapp.services import auth as auth_service
    from webapp.services.actor import Actor

    me = login_as("admin")
    other = make_user("admin")
    auth_service.update_user(session, Actor.system("test"), other.id, active=False)
    assert client.post(f"/admin/users/{me.id}", data={"role": "viewer", "active": "y"}).status_code == 422


def test_the_cli_refuses_to_leave_no_admin(runner, make_user, session):
    admin = make_user("admin")
    result = runner.invoke(args=["users", "update", "--email", admin.email, "--role", "viewer"])
    assert result.exit_code == 2 and "last active admin" in result.output
    result = runner.invoke(args=["users", "update", "--email", admin.email, "--inactive"])
    assert result.exit_code == 2 and "last active admin" in result.output
    other = make_user("analyst")
    result = runner.invoke(args=["users", "update", "--email", other.email, "--role", "admin"])
    assert result.exit_code == 0 and "admin, active" in result.output
    result = runner.invoke(args=["users", "update", "--email", admin.email, "--inactive"])
    assert result.exit_code == 0 and "inactive" in result.output


@pytest.mark.postgres
def test_two_admins_demoting_each_other_at_once_leave_one_admin(app, make_user, session, require_postgres):
    import threading

    from webapp.extensions import db
    from webapp.models import Role
    from webapp.services import auth as auth_service
    from webapp.services.actor import Actor
    from webapp.services.errors import ValidationFailed

    ids = [make_user("admin").id, make_user("admin").id]
    barrier, outcomes = threading.Barrier(2), []

    def demote(user_id) -> None:  # type: ignore[no-untyped-def]
        with app.app_context():
            barrier.wait()
            try:
                auth_service.update_user(db.session, Actor.system("test"), user_id, role="viewer")
                outcomes.append("demoted")
            except ValidationFailed:
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=demote, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["demoted", "refused"]
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(User).where(User.role == Role.admin)) == 1
