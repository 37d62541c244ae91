"""Admins edit a user's name and email, reset a password (the user must choose a new one at the
next sign-in, every session is signed out) and deactivate; the last active admin stays one."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.web.pages import form_csrf_token, parse
from webapp.models import AuditEvent, User

TEMPORARY = "temporary password 123"


def _edit(client, user, **data):  # type: ignore[no-untyped-def]
    html = client.get(f"/admin/users/{user.id}/edit").get_data(as_text=True)
    fields = {"name": user.name, "email": user.email, "role": user.role.value,
              "active": "y" if user.active else "", **data}
    return client.post(f"/admin/users/{user.id}/edit",
                       data={**{k: v for k, v in fields.items() if v != ""},
                             "csrf_token": form_csrf_token(html)})


def test_an_admin_edits_name_email_and_role(client, session, login_as, make_user):
    login_as("admin")
    user = make_user("viewer", email="old@example.com")
    page = client.get(f"/admin/users/{user.id}/edit")
    assert page.status_code == 200
    labels = [lab.text for lab in parse(page.data).find_all("label")]
    assert {"Name", "Email", "Role", "Active", "Temporary password"} <= set(labels)
    response = _edit(client, user, name="Dana Analyst", email="Dana@Example.com", role="analyst")
    assert response.status_code == 303
    session.expire_all()
    user = session.get(User, user.id)
    assert (user.name, user.email, user.role.value) == ("Dana Analyst", "dana@example.com", "analyst")
    event = session.scalars(select(AuditEvent).where(AuditEvent.entity_id == str(user.id))
                            .order_by(AuditEvent.id.desc())).first()
    assert event.changes["email"] == ["old@example.com", "dana@example.com"]
    assert event.changes["name"] == ["", "Dana Analyst"]


def test_an_email_already_taken_is_422_with_a_message(client, session, login_as, make_user):
    login_as("admin")
    make_user("viewer", email="taken@example.com")
    user = make_user("viewer", email="mine@example.com")
    response = _edit(client, user, email="TAKEN@example.com")
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)


def test_the_last_active_admin_cannot_be_deactivated_from_the_edit_page(client, session, login_as):
    admin = login_as("admin")
    response = _edit(client, admin, active="")
    assert response.status_code == 422
    assert "last active admin" in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(User, admin.id).active


def test_a_reset_password_signs_out_and_must_be_changed(app, client, session, login_as, make_user):
    login_as("admin")
    user = make_user("analyst")
    theirs = app.test_client()
    theirs.post("/login", data={"email": user.email, "password": PASSWORD})
    assert theirs.get("/assets").status_code == 200
    html = client.get(f"/admin/users/{user.id}/edit").get_data(as_text=True)
    response = client.post(f"/admin/users/{user.id}/password",
                           data={"password": TEMPORARY, "csrf_token": form_csrf_token(html)})
    assert response.status_code == 303
    assert theirs.get("/assets").status_code in (302, 303)  # their session was signed out
    again = app.test_client()
    again.post("/login", data={"email": user.email, "password": TEMPORARY})
    for url in ("/assets", "/", "/imports"):
        response = again.get(url)
        assert response.status_code == 303 and response.headers["Location"].endswith("/account"), url
    account = again.get("/account").get_data(as_text=True)
    assert "An admin reset your password" in account
    token = form_csrf_token(account)
    same = again.post("/account", data={"current_password": TEMPORARY, "new_password": TEMPORARY,
                                        "csrf_token": token})
    assert same.status_code == 422
    done = again.post("/account", data={"current_password": TEMPORARY,
                                        "new_password": "my own new password", "csrf_token": token})
    assert done.status_code in (302, 303)
    session.expire_all()
    assert session.get(User, user.id).must_change_password is False
    fresh = app.test_client()
    fresh.post("/login", data={"email": user.email, "password": "my own new password"})
    assert fresh.get("/assets").status_code == 200
    event = session.scalars(select(AuditEvent).where(AuditEvent.entity_id == str(user.id))
                            .where(AuditEvent.message.contains("reset"))).one()
    assert event.changes["password"] == ["***", "***"] and TEMPORARY not in str(event.changes)


def test_a_short_temporary_password_is_refused(client, session, login_as, make_user):
    login_as("admin")
    user = make_user("viewer")
    html = client.get(f"/admin/users/{user.id}/edit").get_data(as_text=True)
    response = client.post(f"/admin/users/{user.id}/password",
                           data={"password": "short", "csrf_token": form_csrf_token(html)})
    assert response.status_code == 422 and "Use at least" in response.get_data(as_text=True)


@pytest.mark.parametrize("role", ["viewer", "analyst", "reviewer"])
def test_only_admins_edit_users(client, session, login_as, make_user, role):
    login_as(role)
    other = make_user("viewer")
    assert client.get(f"/admin/users/{other.id}/edit").status_code == 403


def test_an_unknown_user_is_404(client, login_as):
    login_as("admin")
    assert client.get("/admin/users/not-a-uuid/edit").status_code == 404
    assert client.get("/admin/users/00000000-0000-0000-0000-000000000000/edit").status_code == 404


# --- settings ------------------------------------------------------------------------------

def test_settings_say_what_each_value_means(client, login_as):
    login_as("admin")
    text = parse(client.get("/admin/settings").data).text
    assert "0.90: an imported record merges into an existing asset without review when the match scores at least 90%" in text
    assert "0.60: a match scoring from 60% up to the auto-merge threshold goes to the review queue" in text
    assert "30: deleted assets stay in the trash 30 days" in text


def test_precedence_lists_are_ordered_inputs_and_their_order_is_saved(client, session, login_as):
    from webapp.services import settings as settings_service

    login_as("admin")
    html = client.get("/admin/settings").get_data(as_text=True)
    page = parse(html)
    inputs = [i.get("value") for i in page.find_all("input", name="source_precedence")]
    assert inputs[:-1] == settings_service.DEFAULTS["source_precedence"] and inputs[-1] == ""
    assert page.find("input", id="source_precedence-1").get("readonly") is not None  # manual
    data = [("csrf_token", form_csrf_token(html)), ("stale_after_days", "30"),
            ("trash_retention_days", "30"), ("auto_merge_threshold", "0.90"),
            ("review_threshold", "0.60")]
    data += [("source_precedence", s) for s in ("manual", "nmap", "aws", "", "cmdb")]
    data += [("business_source_precedence", s)
             for s in settings_service.DEFAULTS["business_source_precedence"]]
    from werkzeug.datastructures import MultiDict

    response = client.post("/admin/settings", data=MultiDict(data))
    assert response.status_code == 303
    session.expire_all()
    assert settings_service.get(session, "source_precedence") == ["manual", "nmap", "aws", "cmdb"]
