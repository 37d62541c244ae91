"""Notifications (SPEC §13): who gets each event (role, recipient, preferences), in one
statement; e-mails through a real SMTP server on 127.0.0.1 (aiosmtpd): the daily digest and
immediate e-mails, text and HTML; and each event kind raised by the code that makes its change."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlalchemy import event, select, update

from tests.imports.helpers import fixture, inventory, run_file
from webapp import jobs
from webapp.jobs import outbox as outbox_jobs
from webapp.models import (
    AuditAction,
    AuditEvent,
    EmailMode,
    EventSeverity,
    ImportRun,
    ImportStatus,
    Notification,
    NotificationPreference,
    OutboxEvent,
    Role,
)
from webapp.models.base import utcnow
from webapp.services import assets as asset_service
from webapp.services import auth, crypto, dispatch, imports, mail, notifications, outbox
from webapp.services.actor import Actor
from webapp.services.auth import LoginThrottled

pytestmark = pytest.mark.usefixtures("require_postgres")


# --- a real SMTP server on 127.0.0.1 ---------------------------------------------------------

class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        with self.arrived:
            self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.arrived.notify_all()
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(app) -> Iterator[Inbox]:  # type: ignore[no-untyped-def]
    """aiosmtpd listening on 127.0.0.1; the app's SMTP_URL points at it."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    app.config["SMTP_FROM"] = "Inventory <inventory@example.com>"
    app.config["APP_URL"] = "https://inventory.example.com"
    try:
        yield inbox
    finally:
        controller.stop()
        app.config["SMTP_URL"] = None


@pytest.fixture(autouse=True)
def _dispatch_by_hand(app):  # type: ignore[no-untyped-def]
    """Commits kick no dispatcher (Redis at a closed port): each test dispatches itself."""
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    yield
    outbox_jobs._redis_failed_at.clear()


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text, html


def received(session, user) -> list[str]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return [n.subject for n in session.scalars(
        select(Notification).where(Notification.user_id == user.id).order_by(Notification.id))]


def events(session, kind: str) -> list[OutboxEvent]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(OutboxEvent).where(OutboxEvent.kind == kind)
                                .order_by(OutboxEvent.created_at)))


# --- fan-out --------------------------------------------------------------------------------

def test_fan_out_reaches_the_roles_and_the_recipient_honouring_preferences(session, db, make_user):
    viewer, analyst, reviewer, admin = (make_user(r) for r in ("viewer", "analyst", "reviewer", "admin"))
    gone = make_user("admin")
    auth.update_user(session, Actor.system(), gone.id, active=False)
    picky = make_user("reviewer")
    notifications.update_preferences(session, Actor.system(), picky.id, kinds=["review_waiting"],
                                     min_severity="high", email=False, email_mode="digest")
    outbox.emit(session, "review_waiting", subject="for reviewers", min_role=Role.reviewer)
    outbox.emit(session, "review_waiting", subject="urgent for reviewers", min_role=Role.reviewer,
                severity=EventSeverity.critical)
    outbox.emit(session, "import_finished", subject="for the analyst", recipient_id=analyst.id)
    outbox.emit(session, "lockout", subject="for everyone", min_role=Role.viewer, severity=EventSeverity.high)
    session.commit()

    statements: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        first = events(session, "review_waiting")[0]
        del statements[:]
        notifications.fan_out(session, first)
        fan_out_statements = [s for s in statements if "notifications" in s]
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    session.rollback()
    assert len(fan_out_statements) == 1 and fan_out_statements[0].lstrip().upper().startswith("INSERT")

    assert dispatch.dispatch_pending(session) == 4
    assert received(session, viewer) == ["for everyone"]
    assert received(session, analyst) == ["for the analyst", "for everyone"]
    assert received(session, reviewer) == ["for reviewers", "urgent for reviewers", "for everyone"]
    assert received(session, admin) == ["for reviewers", "urgent for reviewers", "for everyone"]
    assert received(session, gone) == []  # deactivated
    # only review items, only high and above
    assert received(session, picky) == ["urgent for reviewers"]


def test_fan_out_adds_nobody_twice(session, make_user):
    admin = make_user("admin")
    outbox.emit(session, "key_rotation", subject="once", min_role=Role.admin)
    session.commit()
    [rotated] = events(session, "key_rotation")
    assert notifications.fan_out(session, rotated) == 1
    assert notifications.fan_out(session, rotated) == 0  # a retried dispatch
    session.commit()
    assert received(session, admin) == ["once"]


# --- e-mail ---------------------------------------------------------------------------------

def _arrive(session, user, subject: str, *, severity=EventSeverity.info, link="/imports/1"):  # type: ignore[no-untyped-def]
    outbox.emit(session, "import_finished", subject=subject, recipient_id=user.id, severity=severity, link=link)
    session.commit()
    dispatch.dispatch_pending(session)


def test_the_daily_digest_lists_what_is_unread_since_the_last(session, make_user, smtp):
    ana = make_user("analyst", email="ana@example.com")
    bob = make_user("analyst", email="bob@example.com")
    quick = make_user("analyst", email="quick@example.com")
    notifications.update_preferences(session, Actor.system(), quick.id, kinds=list(outbox.KINDS),
                                     min_severity="info", email=True, email_mode="immediate")
    smtp.messages.clear()
    _arrive(session, ana, "Import #1 (aws.json) finished", severity=EventSeverity.low)
    _arrive(session, ana, "Import #2 <nmap.xml> failed", severity=EventSeverity.high, link="/imports/2")
    _arrive(session, bob, "Bob's import finished")
    bob_read = session.scalars(select(Notification).where(Notification.user_id == bob.id)).one()
    notifications.mark_read(session, bob.id, bob_read.id)
    _arrive(session, quick, "Quick's import finished")
    assert len(smtp.to("quick@example.com")) == 1  # immediate, not in the digest
    smtp.messages.clear()

    assert notifications.send_digests(session) == 1  # ana only: bob read his; quick is immediate
    [digest] = smtp.messages
    assert digest["To"] == "ana@example.com" and digest["From"] == "Inventory <inventory@example.com>"
    assert digest["Subject"] == "[Asset Inventory] 2 new notifications"
    text, html = parts(digest)
    assert "2 notifications arrived since your last digest" in text
    assert "- [high] Import #2 <nmap.xml> failed" in text
    assert "https://inventory.example.com/imports/2" in text
    assert "- [low] Import #1 (aws.json) finished" in text
    assert text.index("Import #2") < text.index("Import #1")  # newest first
    # the HTML part is the same content as simple markup, escaped
    assert "<li>[high] Import #2 &lt;nmap.xml&gt; failed" in html
    assert '<a href="https://inventory.example.com/imports/2">' in html
    assert '<a href="https://inventory.example.com/account/notifications">' in html
    assert "<script" not in html

    # nothing new: no digest; something new: only it
    assert notifications.send_digests(session) == 0
    session.expire_all()
    assert session.get(NotificationPreference, ana.id).last_digest_at is not None
    _arrive(session, ana, "Import #3 finished")
    assert notifications.send_digests(session) == 1
    text, _html = parts(smtp.messages[-1])
    assert "Import #3" in text and "Import #2" not in text and "1 notification arrived" in text


def test_no_digest_for_who_turned_email_off_and_none_without_smtp(app, session, make_user, smtp):
    quiet = make_user("viewer", email="quiet@example.com")
    notifications.update_preferences(session, Actor.system(), quiet.id, kinds=list(outbox.KINDS),
                                     min_severity="info", email=False, email_mode="digest")
    _arrive(session, quiet, "shh")
    assert notifications.send_digests(session) == 0
    loud = make_user("viewer", email="loud@example.com")
    _arrive(session, loud, "hello")
    app.config["SMTP_URL"] = None
    assert notifications.send_digests(session) == 0  # e-mail is off
    assert smtp.messages == []


def test_immediate_email_after_the_notification_is_committed(session, make_user, smtp):
    now = make_user("reviewer", email="now@example.com")
    notifications.update_preferences(session, Actor.system(), now.id, kinds=list(outbox.KINDS),
                                     min_severity="info", email=True, email_mode=EmailMode.immediate.value)
    later = make_user("reviewer", email="later@example.com")
    outbox.emit(session, "review_waiting", subject="3 review items waiting", link="/conflicts",
                min_role=Role.reviewer, severity=EventSeverity.medium)
    session.commit()
    assert dispatch.dispatch_pending(session) == 1
    [message] = smtp.messages
    assert message["To"] == "now@example.com"
    assert message["Subject"] == "[Asset Inventory] 3 review items waiting"
    text, html = parts(message)
    assert "Review items are waiting · severity medium" in text
    assert "Open it: https://inventory.example.com/conflicts" in text
    assert '<a href="https://inventory.example.com/conflicts">' in html
    session.expire_all()
    sent = session.scalars(select(Notification).where(Notification.user_id == now.id)).one()
    assert sent.mail_pending is False
    assert received(session, later) == ["3 review items waiting"]  # in the app; by digest later
    assert dispatch.dispatch_pending(session) == 0 and len(smtp.messages) == 1  # never twice


def test_an_unreachable_smtp_server_keeps_immediate_emails_for_the_next_dispatch(app, session, make_user, smtp):
    keen = make_user("viewer", email="keen@example.com")
    notifications.update_preferences(session, Actor.system(), keen.id, kinds=list(outbox.KINDS),
                                     min_severity="info", email=True, email_mode="immediate")
    working = app.config["SMTP_URL"]
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{_free_port()}"  # nothing listens there
    _arrive(session, keen, "while the server was down")
    session.expire_all()
    waiting = session.scalars(select(Notification).where(Notification.user_id == keen.id)).one()
    assert waiting.mail_pending is True  # the in-app notification is there; the e-mail is owed
    app.config["SMTP_URL"] = working
    dispatch.dispatch_pending(session)
    assert [m["Subject"] for m in smtp.to("keen@example.com")] == [
        "[Asset Inventory] while the server was down"]


def test_smtp_urls():
    plain = mail.parse_url("smtp://user%40x:p%3Ass@mail.example.com:2525?starttls=true")
    assert (plain.host, plain.port, plain.username, plain.password) == ("mail.example.com", 2525, "user@x", "p:ss")
    assert plain.starttls and not plain.implicit_tls and "p:ss" not in repr(plain)
    tls = mail.parse_url("smtps://mail.example.com")
    assert tls.implicit_tls and tls.port == 465 and not tls.starttls
    with pytest.raises(mail.SmtpUrlInvalid):
        mail.parse_url("http://mail.example.com")


# --- each kind raised by the code that makes the change --------------------------------------

def test_an_import_that_finishes_tells_its_starter(session, make_user):
    analyst = make_user("analyst")
    other = make_user("analyst")
    run = run_file(session, fixture("inventory.json"), "inv.json", actor=Actor(analyst.id, analyst.email))
    assert run.status == ImportStatus.succeeded
    [finished] = events(session, "import_finished")
    assert finished.recipient_id == analyst.id and finished.link == f"/imports/{run.id}"
    assert finished.payload["import_id"] == str(run.id) and finished.payload["counts"]["created"] == run.created
    dispatch.dispatch_pending(session)
    assert received(session, analyst) == [f"Import #{run.number} (inv.json) finished"]
    assert received(session, other) == []


def test_an_import_that_fails_tells_analysts_and_up(session, make_user):
    starter, viewer, admin = make_user("analyst"), make_user("viewer"), make_user("admin")
    run = run_file(session, fixture("nmap_truncated.xml"), "bad.xml", actor=Actor(starter.id, starter.email))
    assert run.status == ImportStatus.failed
    [failed] = events(session, "import_failed")
    assert failed.severity == EventSeverity.high and failed.min_role == Role.analyst
    assert failed.payload["error"] == run.error
    dispatch.dispatch_pending(session)
    subject = f"Import #{run.number} (bad.xml) failed"
    assert received(session, starter) == [subject] and received(session, admin) == [subject]
    assert received(session, viewer) == []


def test_a_reaped_dead_run_is_a_failed_import(session, make_user):
    starter = make_user("analyst")
    run = imports.create_run(session, Actor(starter.id, starter.email), data=fixture("inventory.json"),
                             filename="killed.json")
    session.execute(update(ImportRun).where(ImportRun.id == run.id).values(
        status=ImportStatus.running, heartbeat_at=utcnow() - timedelta(hours=1)))
    session.commit()
    assert imports.reap_stale(session, stale_seconds=60) == 1
    [failed] = events(session, "import_failed")
    assert failed.payload["import_id"] == str(run.id) and "stopped responding" in failed.body


def test_review_items_waiting_at_most_once_an_hour_with_the_open_count(session, make_user):
    reviewer, analyst = make_user("reviewer"), make_user("analyst")
    pg = {"engine": "postgresql", "host": "db1.example.com", "port": 5432, "environment": "production"}
    asset_service.create(session, Actor.cli(), {**pg, "name": "orders", "database_name": "orders"})
    asset_service.create(session, Actor.cli(), {**pg, "name": "billing", "database_name": "billing"})
    # an endpoint matching two assets: flagged for a reviewer
    run_file(session, inventory({**pg, "name": "something", "owner": "x"}))
    [waiting] = events(session, "review_waiting")
    assert waiting.subject == "1 review item waiting" and waiting.payload["open"] == 1
    assert waiting.min_role == Role.reviewer and waiting.link == "/conflicts"
    assert waiting.dedupe_key == f"review_waiting:{waiting.created_at:%Y-%m-%dT%H}"
    run_file(session, inventory({**pg, "name": "another", "owner": "y", "database_name": "x"},
                                {**pg, "name": "third", "owner": "z", "database_name": "y"}))
    assert len(events(session, "review_waiting")) == 1  # the same hour: not again
    dispatch.dispatch_pending(session)
    assert "1 review item waiting" in received(session, reviewer)
    assert "1 review item waiting" not in received(session, analyst)


def test_a_lockout_tells_the_admins(app, session, make_user):
    admin, analyst = make_user("admin"), make_user("analyst")
    victim = make_user("viewer", email="victim@example.com")
    actor = Actor(None, "web", ip="203.0.113.9")
    for attempt in range(5):
        with pytest.raises((auth.LoginFailed, LoginThrottled)):
            auth.authenticate(session, actor, victim.email, f"wrong password {attempt}",
                              max_failures=5, ip_max_failures=20, lockout_seconds=900)
    [locked] = events(session, "lockout")
    assert locked.severity == EventSeverity.high and locked.min_role == Role.admin
    assert "victim@example.com" in locked.subject and locked.link == f"/admin/users/{victim.id}/edit"
    # written with the failed sign-in's audit event, in the same commit
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == AuditAction.login_failed,
                                                   AuditEvent.message.contains("locked")))
    dispatch.dispatch_pending(session)
    assert received(session, admin) == [locked.subject]
    assert received(session, analyst) == []


def test_a_key_rotation_tells_the_admins(session, make_user):
    admin, reviewer = make_user("admin"), make_user("reviewer")
    crypto.rotate(session, Actor(admin.id, admin.email))
    [rotated] = events(session, "key_rotation")
    assert rotated.min_role == Role.admin and rotated.payload["actor"] == admin.email
    dispatch.dispatch_pending(session)
    assert len(received(session, admin)) == 1 and received(session, reviewer) == []


def test_the_thread_runner_leaves_no_dispatcher_behind(app, session, make_user):
    app.config["REDIS_URL"] = None
    admin = make_user("admin")
    crypto.rotate(session, Actor(admin.id, admin.email))
    jobs.wait_for_threads()
    assert len(received(session, admin)) == 1
    assert not [t for t in threading.enumerate() if t.name.startswith(outbox_jobs.KIND)]
