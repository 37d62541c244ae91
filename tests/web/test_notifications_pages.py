"""The bell, `/notifications` and `/account/notifications` (SPEC §13): each person sees and
manages only their own; the bell costs one query; bad filters and settings are a 422 naming the
field."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.web.pages import field_messages, parse
from tests.web.test_query_count import LAYOUT, count_statements  # noqa: F401 (fixture)
from webapp import jobs
from webapp.models import (
    AuditAction,
    AuditEvent,
    EventSeverity,
    Notification,
    NotificationPreference,
    Role,
)
from webapp.services import dispatch, outbox


@pytest.fixture(autouse=True)
def _events_wait(app):  # type: ignore[no-untyped-def]
    """Without Redis: a commit that wrote events dispatches them on a thread (waited for)."""
    app.config["REDIS_URL"] = None
    app.config["SMTP_URL"] = None


def notify(session, subject: str, *, recipient=None, min_role: Role = Role.viewer,  # type: ignore[no-untyped-def]
           kind: str = "import_finished", severity: EventSeverity = EventSeverity.info,
           link: str | None = "/imports") -> None:
    outbox.emit(session, kind, subject=subject, severity=severity, link=link,
                recipient_id=recipient.id if recipient else None, min_role=min_role)
    session.commit()  # kicks the dispatcher thread (no REDIS_URL here)
    jobs.wait_for_threads()
    dispatch.dispatch_pending(session)  # nothing left for it: the thread took the event


def bell_text(html: bytes) -> str:
    bell = parse(html).by_id("notification-bell")
    assert bell is not None
    return bell.text


def test_the_bell_shows_the_unread_count_and_mark_read_lowers_it(client, session, login_as, make_user):
    me = login_as("viewer")
    other = make_user("viewer")
    notify(session, "Import #1 finished", recipient=me)
    notify(session, "Import #2 finished", recipient=me)
    notify(session, "Someone else's import", recipient=other)
    page = client.get("/assets")
    assert "Notifications: 2 unread" in bell_text(page.data)

    listing = client.get("/notifications")
    assert listing.status_code == 200
    items = parse(listing.data).find_all("li", **{"class": "notification unread"})
    # newest first; someone else's never shown
    assert [i.find("a").text for i in items] == ["Import #2 finished", "Import #1 finished"]
    assert b"Someone else" not in listing.data

    mine = session.scalars(select(Notification).where(Notification.user_id == me.id)
                           .order_by(Notification.id)).all()
    # htmx: the item comes back read, and the bell out of band with the new count
    answer = client.post(f"/notifications/{mine[0].id}/read", headers={"HX-Request": "true"})
    assert answer.status_code == 200
    tree = parse(answer.data)
    assert tree.by_id(f"notification-{mine[0].id}").get("class") == "notification"
    assert tree.by_id("notification-bell").get("hx-swap-oob") == "true"
    assert "1 unread" in tree.by_id("notification-bell").text

    # mark all read (a plain form post): redirected back, the bell is empty
    done = client.post("/notifications/read-all")
    assert done.status_code == 303
    page = client.get("/notifications")
    assert "1 notification marked read." in parse(page.data).text
    assert "Notifications: 0 unread" in bell_text(page.data)
    assert parse(page.data).by_id("notification-bell").find("span", **{"class": "badge badge-count bell-count"}) is None
    session.expire_all()
    theirs = session.scalars(select(Notification).where(Notification.user_id == other.id)).one()
    assert theirs.read_at is None  # only mine were marked


def test_nobody_reads_or_marks_another_persons_notification(client, session, login_as, make_user):
    login_as("admin")
    other = make_user("viewer")
    notify(session, "Private to the viewer", recipient=other)
    theirs = session.scalars(select(Notification)).one()
    assert client.post(f"/notifications/{theirs.id}/read").status_code == 404
    assert client.get(f"/notifications/{theirs.id}/open").status_code == 404
    assert client.post("/notifications/not-a-number/read").status_code == 404
    session.expire_all()
    assert session.get(Notification, theirs.id).read_at is None


def test_opening_a_notification_marks_it_read_and_goes_to_its_page(client, session, login_as):
    me = login_as("analyst")
    notify(session, "Import #7 failed", recipient=me, link="/imports/abc")
    notify(session, "Odd link", recipient=me, link="//evil.example.com/x")
    first, odd = session.scalars(select(Notification).order_by(Notification.id)).all()
    answer = client.get(f"/notifications/{first.id}/open")
    assert answer.status_code == 303 and answer.headers["Location"] == "/imports/abc"
    # only app paths are followed
    assert client.get(f"/notifications/{odd.id}/open").headers["Location"] == "/notifications"
    session.expire_all()
    assert session.get(Notification, first.id).read_at is not None


def test_filters_pages_and_empty_states(client, session, login_as):
    me = login_as("viewer")
    assert "No notifications yet" in parse(client.get("/notifications").data).text
    for i in range(3):
        notify(session, f"finished {i}", recipient=me)
    notify(session, "locked", recipient=me, kind="lockout", severity=EventSeverity.high)
    by_kind = parse(client.get("/notifications?kind=lockout").data)
    assert [a.text for a in by_kind.find_all("a", **{"class": "notification-subject"})] == ["locked"]
    client.post("/notifications/read-all")
    unread = client.get("/notifications?show=unread")
    assert "No notifications match this filter." in parse(unread.data).text
    # keyset pages, newest first
    import webapp.services.notifications as service

    page = service.list_page(session, me.id, limit=2)
    assert [n.subject for n in page.items] == ["locked", "finished 2"]
    older = client.get(f"/notifications?before={page.next_before}")
    assert [a.text for a in parse(older.data).find_all("a", **{"class": "notification-subject"})] == [
        "finished 1", "finished 0"]
    # the htmx filter answers with the list block alone
    partial = client.get("/notifications?kind=lockout", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and b"<html" not in partial.data
    assert parse(partial.data).by_id("notification-list") is not None
    assert "HX-Request" in partial.headers["Vary"]


@pytest.mark.parametrize("query, field", [
    ("kind=nonsense", "kind"), ("before=abc", "before"), ("before=-3", "before"), ("show=maybe", "show"),
    ("kind=%00", "kind"), ("before=99999999999999999999999", "before"),
])
def test_a_bad_filter_is_a_422_naming_it(client, login_as, query, field):
    login_as("viewer")
    answer = client.get(f"/notifications?{query}")
    assert answer.status_code == 422
    assert field.replace("_", " ") in parse(answer.data).find("div", role="alert").text.lower()


def test_the_bell_endpoint_answers_out_of_band(client, session, login_as):
    me = login_as("viewer")
    notify(session, "one", recipient=me)
    answer = client.get("/notifications/bell", headers={"HX-Request": "true"})
    assert answer.status_code == 200
    bell = parse(answer.data).by_id("notification-bell")
    assert bell.get("hx-swap-oob") == "true" and "1 unread" in bell.text
    # the header polls it every minute, from a script-free attribute
    poller = parse(client.get("/assets").data).find("span", **{"hx-get": "/notifications/bell"})
    assert poller is not None and poller.get("hx-trigger") == "every 60s"


def test_the_bell_is_one_query(client, session, login_as, count_statements):  # noqa: F811
    me = login_as("viewer")
    baseline = count_statements("/notifications/bell")
    # the bell endpoint, warm: the session row alone (the count comes from the counts cache
    # until a commit writes notifications), whatever the number of notifications
    assert baseline == 1
    for i in range(30):
        notify(session, f"n{i}", recipient=me)
    assert count_statements("/notifications/bell") == baseline
    # /notifications: the layout (its bell included) + the page of notifications
    assert count_statements("/notifications") == LAYOUT + 1


def test_the_bell_caps_its_count(client, session, login_as):
    me = login_as("viewer")
    import webapp.services.notifications as service

    for i in range(service.BELL_CAP + 2):
        outbox.emit(session, "import_finished", subject=f"n{i}", recipient_id=me.id)
    session.commit()  # kicks the dispatcher thread (no REDIS_URL here)
    jobs.wait_for_threads()
    assert "99+ unread" in bell_text(client.get("/notifications/bell").data)


@pytest.mark.parametrize("role", ["viewer", "analyst", "reviewer", "admin"])
def test_every_role_manages_its_own_notifications(client, session, login_as, role):
    me = login_as(role)
    notify(session, "mine", recipient=me)
    for url in ("/notifications", "/notifications/bell", "/account/notifications"):
        assert client.get(url).status_code == 200, url
    assert client.post("/notifications/read-all").status_code == 303


@pytest.mark.parametrize("method, url", [
    ("get", "/notifications"), ("get", "/notifications/bell"), ("get", "/account/notifications"),
    ("post", "/notifications/read-all"), ("post", "/notifications/1/read"), ("get", "/notifications/1/open"),
    ("post", "/account/notifications"),
])
def test_anonymous_is_sent_to_sign_in(client, make_user, method, url):
    make_user("admin")  # set up: not the first-run page
    answer = getattr(client, method)(url)
    assert answer.status_code in (302, 303) and "/login" in answer.headers["Location"]


def test_settings_are_saved_audited_and_honoured(client, session, login_as, make_user):
    me = login_as("admin")
    page = parse(client.get("/account/notifications").data)
    boxes = page.find_all("input", type="checkbox", name="kinds")
    assert len(boxes) == len(outbox.KINDS) and all(b.get("checked") is not None for b in boxes)
    assert "E-mail is off on this server" in page.text  # no SMTP_URL
    label = page.find("label", **{"class": "check"})
    assert outbox.KINDS["import_finished"] in label.text

    kinds = [k for k in outbox.KINDS if k != "key_rotation"]
    answer = client.post("/account/notifications", data={
        "kinds": kinds, "min_severity": "medium", "email_mode": "immediate"})
    assert answer.status_code == 303
    session.expire_all()
    saved = session.get(NotificationPreference, me.id)
    assert saved.muted_kinds == ["key_rotation"] and saved.min_severity == EventSeverity.medium
    assert saved.email is False and saved.email_mode.value == "immediate"
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.update,
                                                     AuditEvent.entity_id == str(me.id))).one()
    assert event.changes["notification_min_severity"] == ["info", "medium"]
    assert event.changes["notification_kinds"][1] == kinds
    reread = parse(client.get("/account/notifications").data)
    assert reread.find("input", id="kind-key_rotation").get("checked") is None
    assert reread.find("input", id="email-mode-immediate").get("checked") is not None

    # honoured: a muted kind and a low severity reach nobody who said so
    notify(session, "rotated", kind="key_rotation", min_role=Role.admin)
    notify(session, "low import", recipient=me, severity=EventSeverity.low)
    notify(session, "high import", recipient=me, severity=EventSeverity.high)
    subjects = [a.text for a in parse(client.get("/notifications").data).find_all(
        "a", **{"class": "notification-subject"})]
    assert subjects == ["high import"]


@pytest.mark.parametrize("data, field", [
    ({"kinds": ["nonsense"], "min_severity": "info", "email_mode": "digest"}, "kinds"),
    ({"kinds": ["lockout"], "min_severity": "apocalyptic", "email_mode": "digest"}, "min_severity"),
    ({"kinds": ["lockout"], "min_severity": "info", "email_mode": "carrier-pigeon"}, "email_mode"),
    ({"kinds": ["lockout"], "min_severity": "in\x00fo", "email_mode": "digest"}, "min_severity"),
])
def test_bad_settings_are_a_422_naming_the_field(client, session, login_as, data, field):
    me = login_as("viewer")
    answer = client.post("/account/notifications", data=data)
    assert answer.status_code == 422
    page = parse(answer.data)
    if any("\x00" in str(v) for v in data.values()):  # refused before the form (any text parameter holding NUL): named
        assert field in page.text or field.replace("_", " ") in page.text.lower()
    else:
        assert "Choose" in field_messages(page, field)
    assert session.get(NotificationPreference, me.id) is None


def test_settings_say_email_is_on_when_smtp_is_configured(app, client, login_as):
    app.config["SMTP_URL"] = "smtp://127.0.0.1:2525"
    login_as("viewer")
    assert "E-mail is off" not in parse(client.get("/account/notifications").data).text


def test_the_settings_page_answers_htmx_with_its_block(client, login_as):
    login_as("viewer")
    partial = client.get("/account/notifications", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and b"<html" not in partial.data
    page = parse(partial.data)
    assert page.by_id("notification-settings") is not None
    assert page.find("input", id="email-mode-digest").get("checked") is not None  # the default
