"""API tokens (SPEC §7, §9): the /account/tokens page, the CLI, and how tokens are stored.

Random, shown once, stored hashed, identifiable by the `inv_` prefix, revocable, audited, with
an optional expiry and a read-only flag.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import inspect, select, text

from tests.api.conftest import assert_problem
from tests.web.pages import labelled_control, parse
from webapp.models import ApiToken, AuditAction, AuditEvent
from webapp.models.base import utcnow
from webapp.services import auth as auth_service
from webapp.services import tokens as token_service
from webapp.services.actor import Actor

SECRET_SHAPE = re.compile(r"inv_[A-Za-z0-9_-]{40,}")


def _checkbox_labelled(page, label_text: str):  # type: ignore[no-untyped-def]
    """A checkbox wrapped in (or pointed at by) a <label> reading exactly `label_text`."""
    for label in page.find_all("label"):
        if label.text != label_text:
            continue
        inner = label.find("input", type="checkbox")
        if inner is not None:
            return inner
        if label.get("for"):
            target = page.by_id(label.get("for"))
            if target is not None and target.get("type") == "checkbox":
                return target
    raise AssertionError(f"no checkbox labelled {label_text!r}")


def _submit_named(page, caption: str) -> bool:
    buttons = [b.text for b in page.find_all("button")]
    inputs = [i.get("value") for i in page.find_all("input", type="submit")]
    return caption in buttons or caption in inputs


def _secrets_in(html: str) -> list[str]:
    return SECRET_SHAPE.findall(html)


def _every_stored_value(session) -> str:  # type: ignore[no-untyped-def]
    """Every value of every row of every table, as one string (to search for a secret)."""
    session.expire_all()
    dump: list[str] = []
    for table in inspect(session.get_bind()).get_table_names():
        for row in session.execute(text(f'SELECT * FROM "{table}"')):
            dump.append(repr(tuple(row)))
    return "\n".join(dump)


# --- the page ---------------------------------------------------------------------------------

def test_tokens_page_has_a_labelled_create_form(client, login_as):
    login_as("viewer")
    response = client.get("/account/tokens")
    assert response.status_code == 200
    page = parse(response.data)
    assert labelled_control(page, "Name").get("name") == "name"
    assert _checkbox_labelled(page, "Read-only").get("name") == "read_only"
    expires = labelled_control(page, "Expires")
    assert expires.tag == "select" and expires.get("name") == "expires_in_days"
    options = {o.get("value") for o in expires.find_all("option")}
    assert "" in options and {"30", "90", "365"} <= options
    assert _submit_named(page, "Create token")
    assert not _secrets_in(response.get_data(as_text=True))


def test_creating_a_token_shows_the_secret_once(client, login_as, session):
    user = login_as("analyst")
    response = client.post("/account/tokens", data={
        "name": "nightly-scanner", "read_only": "y", "expires_in_days": "30",
    })
    assert response.status_code == 201
    html = response.get_data(as_text=True)
    shown = _secrets_in(html)
    assert len(set(shown)) == 1, shown
    secret = shown[0]
    assert secret.startswith("inv_")
    alert = parse(html).by_id("new-token")
    assert alert is not None and alert.get("role") == "alert" and secret in alert.text

    session.expire_all()
    token = session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
    assert token.name == "nightly-scanner" and token.read_only is True
    assert token.prefix == secret[:12] and token.prefix.startswith("inv_")
    assert timedelta(days=29) < token.expires_at - utcnow() <= timedelta(days=30)
    assert token.revoked_at is None and token.last_used_at is None

    # the list shows the token by name and prefix; the secret is gone on reload
    again = client.get("/account/tokens")
    assert again.status_code == 200
    reload_html = again.get_data(as_text=True)
    assert secret not in reload_html and not _secrets_in(reload_html)
    assert parse(reload_html).by_id("new-token") is None
    rows = [r.text for r in parse(reload_html).find_all("tr")]
    row = next(r for r in rows if "nightly-scanner" in r)
    assert f"{token.prefix}…" in row and "read-only" in row and "active" in row

    # and the secret works as a bearer token, read-only
    api = client.get("/api/v1/assets", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 200
    write = client.post("/api/v1/assets", json={"name": "x", "engine": "mysql"},
                        headers={"Authorization": f"Bearer {secret}"})
    assert_problem(write, 403)


def test_a_token_without_expiry_and_with_write_access(client, login_as, session):
    user = login_as("analyst")
    response = client.post("/account/tokens", data={"name": "ci", "expires_in_days": ""})
    assert response.status_code == 201
    secret = _secrets_in(response.get_data(as_text=True))[0]
    session.expire_all()
    token = session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
    assert token.expires_at is None and token.read_only is False
    created = client.post("/api/v1/assets", json={"name": "from-ci", "engine": "mysql"},
                          headers={"Authorization": f"Bearer {secret}"})
    assert created.status_code == 201


def test_creating_a_token_needs_a_name(client, login_as, session):
    login_as("viewer")
    response = client.post("/account/tokens", data={"name": "", "expires_in_days": "90"})
    assert response.status_code == 422
    assert not _secrets_in(response.get_data(as_text=True))
    session.expire_all()
    assert session.scalar(select(ApiToken)) is None


def test_the_token_page_needs_sign_in(client, make_user):
    make_user("admin")  # past first-run setup
    response = client.get("/account/tokens")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_revoking_a_token_from_the_page(client, login_as, session):
    login_as("viewer")
    created = client.post("/account/tokens", data={"name": "laptop", "expires_in_days": "90"})
    secret = _secrets_in(created.get_data(as_text=True))[0]
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/assets", headers=headers).status_code == 200
    session.expire_all()
    token = session.scalar(select(ApiToken).where(ApiToken.name == "laptop"))

    page = parse(client.get("/account/tokens").data)
    form = next(f for f in page.find_all("form") if f.get("action", "").endswith("/revoke"))
    assert form.get("action") == f"/account/tokens/{token.id}/revoke"
    response = client.post(form.get("action"))
    assert response.status_code == 303

    session.expire_all()
    assert session.get(ApiToken, token.id).revoked_at is not None
    listing = client.get("/account/tokens").get_data(as_text=True)
    row = next(r.text for r in parse(listing).find_all("tr") if "laptop" in r.text)
    assert "revoked" in row
    assert_problem(client.get("/api/v1/assets", headers=headers), 401)


def test_someone_else_cannot_revoke_my_token(client, login_as, make_token, session):
    mine = make_token("analyst", name="mine")
    login_as("analyst")  # another analyst
    response = client.post(f"/account/tokens/{mine.token.id}/revoke")
    assert response.status_code == 403
    session.expire_all()
    assert session.get(ApiToken, mine.token.id).revoked_at is None


# --- storage ----------------------------------------------------------------------------------

def test_only_a_hash_of_the_secret_is_stored(make_token, session, client):
    issued = make_token("analyst", name="storage-check")
    assert issued.secret.startswith("inv_") and len(issued.secret) >= 40
    client.get("/api/v1/assets", headers=issued.headers)  # use it once: last_used_at is written
    dump = _every_stored_value(session)
    assert issued.secret not in dump
    assert issued.secret[12:] not in dump  # not even the part after the shown prefix
    assert issued.token.prefix in dump
    session.expire_all()
    row = session.get(ApiToken, issued.token.id)
    assert row.secret_hash != issued.secret and len(row.secret_hash) == 64


def test_secrets_are_random_and_unique(make_token):
    secrets = {make_token("viewer").secret for _ in range(5)}
    assert len(secrets) == 5
    assert all(SECRET_SHAPE.fullmatch(s) for s in secrets)


def test_last_used_at_is_set_when_the_token_is_used(make_token, session, client):
    issued = make_token("viewer")
    assert issued.token.last_used_at is None
    before = utcnow()
    assert client.get("/api/v1/assets", headers=issued.headers).status_code == 200
    session.expire_all()
    used = session.get(ApiToken, issued.token.id).last_used_at
    assert used is not None and before <= used <= utcnow()


def test_create_and_revoke_are_audited_with_the_secret_masked(client, login_as, session):
    user = login_as("reviewer")
    created = client.post("/account/tokens", data={"name": "audited", "expires_in_days": "365"})
    secret = _secrets_in(created.get_data(as_text=True))[0]
    session.expire_all()
    token = session.scalar(select(ApiToken).where(ApiToken.name == "audited"))
    client.post(f"/account/tokens/{token.id}/revoke")

    session.expire_all()
    events = list(session.scalars(
        select(AuditEvent).where(AuditEvent.entity_type == "api_token",
                                 AuditEvent.entity_id == str(token.id)).order_by(AuditEvent.id)
    ))
    assert [e.action for e in events] == [AuditAction.token_create, AuditAction.token_revoke]
    create, revoke = events
    assert create.actor_id == user.id and create.actor_label == user.email
    assert create.changes["secret"] == [None, "***"]
    assert create.changes["name"] == [None, "audited"]
    assert create.changes["read_only"] == [None, False]
    assert revoke.actor_id == user.id
    assert revoke.changes["revoked_at"][0] is None and revoke.changes["revoked_at"][1]
    for event in events:
        assert secret not in repr(event.changes) and secret not in (event.message or "")
        assert token.prefix in (event.message or "")


# --- the command line -------------------------------------------------------------------------

def test_cli_creates_a_token_whose_last_line_is_the_secret(runner, make_user, session, client):
    user = make_user("analyst", email="scanner-owner@example.com")
    result = runner.invoke(args=["tokens", "create", "--email", "Scanner-Owner@Example.com",
                                 "--name", "scanner"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    secret = lines[-1]
    assert SECRET_SHAPE.fullmatch(secret), lines
    assert "read-write" in lines[0] and "scanner" in lines[0]

    headers = {"Authorization": f"Bearer {secret}"}
    created = client.post("/api/v1/assets", json={"name": "cli-made", "engine": "redis"},
                          headers=headers)
    assert created.status_code == 201
    session.expire_all()
    token = session.scalar(select(ApiToken).where(ApiToken.name == "scanner"))
    assert token.user_id == user.id and token.read_only is False
    assert secret not in _every_stored_value(session)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == AuditAction.token_create))
    assert event.actor_label == "cli" and event.changes["secret"] == [None, "***"]


def test_cli_read_only_token_can_read_but_not_write(runner, make_user, client):
    make_user("admin", email="ro-owner@example.com")
    result = runner.invoke(args=["tokens", "create", "--email", "ro-owner@example.com",
                                 "--name", "dashboards", "--read-only"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert "read-only" in result.output
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/audit", headers=headers).status_code == 200
    denied = client.post("/api/v1/assets", json={"name": "x", "engine": "mysql"}, headers=headers)
    assert_problem(denied, 403)


def test_cli_refuses_an_unknown_email(runner, session):
    result = runner.invoke(args=["tokens", "create", "--email", "nobody@example.com",
                                 "--name", "x"])
    assert result.exit_code == 2
    assert "nobody@example.com" in result.output
    assert not SECRET_SHAPE.search(result.output)
    session.expire_all()
    assert session.scalar(select(ApiToken)) is None


def test_cli_refuses_a_deactivated_user(runner, make_user, session):
    user = make_user("analyst", email="gone@example.com")
    auth_service.update_user(session, Actor.system("test"), user.id, active=False)
    result = runner.invoke(args=["tokens", "create", "--email", "gone@example.com", "--name", "x"])
    assert result.exit_code == 2
    assert session.scalar(select(ApiToken)) is None


def test_authenticate_rejects_a_secret_of_a_revoked_token_directly(make_token, session):
    issued = make_token("viewer")
    token_service.revoke(session, Actor.system("test"), issued.token.id, by=issued.user)
    try:
        token_service.authenticate(session, issued.secret)
    except token_service.TokenRejected as exc:
        assert exc.status == 401
    else:  # pragma: no cover
        raise AssertionError("a revoked token authenticated")
