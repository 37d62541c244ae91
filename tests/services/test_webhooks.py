"""Webhook deliveries (SPEC §10, §13) against a real receiver on 127.0.0.1 (tests/webhook_receiver.py):
signed bodies, retries with backoff (time injected, nothing sleeps), the same delivery id on every
retry and redelivery, hanging and disconnecting receivers, redirects not followed, giving up after
the last attempt with a `webhook_failed` event for admins (and no loop), the secret kept secret."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests import webhook_receiver
from webapp import jobs
from webapp.jobs import webhooks as webhook_jobs
from webapp.models import (
    AuditEvent,
    DeliveryStatus,
    OutboxEvent,
    Role,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from webapp.models.base import utcnow
from webapp.services import audit, crypto, outbox, webhooks
from webapp.services.actor import Actor
from webapp.services.errors import InvalidState, ValidationFailed

ADMIN = Actor(user_id=None, label="admin@example.com")


@pytest.fixture
def app_config(app_config):  # type: ignore[no-untyped-def]
    return {**app_config, "WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_TIMEOUT_SECONDS": 1.0,
            "WEBHOOK_SEND_ON_COMMIT": False}


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    r = webhook_receiver.start(webhook_receiver.Receiver())
    yield r
    webhook_receiver.shut(r)


def _hook(session, receiver, path: str, kinds=("import_failed",), name: str | None = None) -> Webhook:  # type: ignore[no-untyped-def]
    webhook, secret = webhooks.create(session, ADMIN, name=name or f"receiver {path}",
                                      url=receiver.url(path), kinds=list(kinds))
    receiver.secrets[path] = secret
    return webhook


def _event(session, kind: str = "import_failed", **payload) -> OutboxEvent:  # type: ignore[no-untyped-def]
    """An outbox event fanned out the way the dispatcher does: in one transaction."""
    event = outbox.emit(session, kind, subject=f"{kind} happened", link="/imports/1",
                        payload=payload or {"import_id": "1"})
    assert event is not None
    session.flush()
    webhooks.fan_out(session, event)
    session.commit()
    return event


def _delivery(session, webhook: Webhook) -> WebhookDelivery:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)).one()


def _attempts(session, delivery: WebhookDelivery) -> list[WebhookAttempt]:  # type: ignore[no-untyped-def]
    return list(session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id)
                                .order_by(WebhookAttempt.id)))


def test_fan_out_adds_one_delivery_per_active_subscribed_webhook(session, receiver):
    wanted = _hook(session, receiver, "/ok", kinds=["import_failed", "lockout"])
    _hook(session, receiver, "/ok", kinds=["lockout"])
    off = _hook(session, receiver, "/ok", kinds=["import_failed"])
    webhooks.update(session, ADMIN, off.id, name=off.name, url=off.url, kinds=off.kinds, active=False)

    event = outbox.emit(session, "import_failed", subject="Import failed")
    session.flush()
    assert webhooks.fan_out(session, event) == 1
    assert webhooks.fan_out(session, event) == 0  # the dispatcher retrying adds nothing
    session.commit()
    rows = session.scalars(select(WebhookDelivery)).all()
    assert [(d.webhook_id, d.event_id, d.kind, d.status) for d in rows] == [
        (wanted.id, event.id, "import_failed", DeliveryStatus.pending)]


def test_fan_out_in_a_transaction_rolled_back_leaves_no_delivery(session, receiver):
    _hook(session, receiver, "/ok")
    event = outbox.emit(session, "import_failed", subject="Import failed")
    session.flush()
    assert webhooks.fan_out(session, event) == 1
    session.rollback()
    assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    assert webhooks.send_due(session, now=utcnow() + timedelta(hours=1)) == 0


def test_a_delivery_is_a_signed_json_post_with_event_and_delivery_headers(session, receiver):
    webhook = _hook(session, receiver, "/ok")
    event = _event(session, import_id="42")

    assert webhooks.send_due(session, now=utcnow()) == 1
    [got] = receiver.at("/ok")
    delivery = _delivery(session, webhook)
    assert got.signature_ok and not got.duplicate
    assert got.content_type == "application/json"
    assert got.event == "import_failed" and got.delivery_id == str(delivery.id)
    assert got.body == delivery.body.encode()  # the exact bytes stored are the bytes sent
    assert json.loads(got.body) == {
        "id": str(event.id), "event": "import_failed", "created_at": event.created_at.isoformat(),
        "subject": "import_failed happened", "severity": "info", "link": "/imports/1",
        "data": {"import_id": "42"},
    }
    assert delivery.status is DeliveryStatus.succeeded and delivery.attempts == 1
    [attempt] = _attempts(session, delivery)
    assert (attempt.status_code, attempt.response_excerpt, attempt.error) == (200, "ok", None)
    assert webhooks.send_due(session, now=utcnow() + timedelta(days=2)) == 0  # nothing left


def test_a_500_is_retried_with_backoff_and_the_same_delivery_id(session, receiver):
    webhook = _hook(session, receiver, "/flaky")
    _event(session)
    now = utcnow()

    assert webhooks.send_due(session, now=now) == 1
    delivery = _delivery(session, webhook)
    assert delivery.status is DeliveryStatus.pending and delivery.attempts == 1
    # the first retry a minute later, ± 20 % jitter
    assert now + timedelta(seconds=47) < delivery.next_attempt_at < now + timedelta(seconds=73)
    [first] = _attempts(session, delivery)
    assert first.status_code == 500 and first.error == "the receiver answered 500"
    assert len(first.response_excerpt.encode()) == 500  # the first 500 bytes of a longer answer

    assert webhooks.send_due(session, now=now + timedelta(seconds=40)) == 0  # not due yet
    assert webhooks.send_due(session, now=now + timedelta(minutes=2)) == 1
    delivery = _delivery(session, webhook)
    assert delivery.status is DeliveryStatus.succeeded and delivery.attempts == 2
    arrivals = receiver.at("/flaky")
    assert [r.delivery_id for r in arrivals] == [str(delivery.id)] * 2
    assert arrivals[0].body == arrivals[1].body and all(r.signature_ok for r in arrivals)


def test_a_redelivery_carries_the_same_id_so_the_receiver_drops_it(session, receiver):
    webhook = _hook(session, receiver, "/ok")
    _event(session)
    webhooks.send_due(session, now=utcnow())
    delivery = _delivery(session, webhook)
    assert delivery.status is DeliveryStatus.succeeded

    pending = webhooks.send_test(session, ADMIN, webhook.id)
    with pytest.raises(InvalidState):  # a pending one cannot be redelivered meanwhile
        webhooks.redeliver(session, ADMIN, pending.id)
    session.rollback()

    webhooks.redeliver(session, ADMIN, delivery.id)
    assert webhooks.send_deliveries(session, [delivery.id]) == 1
    arrivals = [r for r in receiver.at("/ok") if r.delivery_id == str(delivery.id)]
    assert len(receiver.at("/ok")) == 2  # the pending test delivery was not sent meanwhile
    assert [r.duplicate for r in arrivals] == [False, True]  # the second was recognised and dropped
    assert arrivals[0].body == arrivals[1].body
    assert receiver.processed >= {str(delivery.id)}
    session.expire_all()
    delivery = session.get(WebhookDelivery, delivery.id)
    assert delivery.status is DeliveryStatus.succeeded
    assert [a.status_code for a in _attempts(session, delivery)] == [200, 200]
    assert session.scalar(select(AuditEvent.message).where(AuditEvent.message.like("%redelivered"))) \
        == f"delivery {delivery.id} (import_failed, succeeded) redelivered"


def test_hanging_and_disconnecting_receivers_are_retried_and_hold_up_nobody(session, receiver):
    hang = _hook(session, receiver, "/hang")
    close = _hook(session, receiver, "/close")
    ok = _hook(session, receiver, "/ok")
    _event(session)
    started = time.monotonic()

    assert webhooks.send_due(session, now=utcnow()) == 3
    # the hang is bounded by the timeout (1 s here, 10 s by default), not by the receiver's 30 s
    assert time.monotonic() - started < receiver.hang_seconds / 2
    assert _delivery(session, ok).status is DeliveryStatus.succeeded
    [ok_attempt] = _attempts(session, _delivery(session, ok))
    [hang_attempt] = _attempts(session, _delivery(session, hang))
    [close_attempt] = _attempts(session, _delivery(session, close))
    assert ok_attempt.duration_ms < hang_attempt.duration_ms  # sent beside the hang, not after it
    assert hang_attempt.error == "no answer within 1 s (timeout)" and hang_attempt.status_code is None
    assert close_attempt.error.startswith("the receiver closed the connection")
    for webhook in (hang, close):
        delivery = _delivery(session, webhook)
        assert delivery.status is DeliveryStatus.pending and delivery.attempts == 1
        assert delivery.next_attempt_at > utcnow()


def test_a_redirect_is_a_failure_and_is_not_followed(session, receiver):
    webhook = _hook(session, receiver, "/redirect")
    _event(session)
    webhooks.send_due(session, now=utcnow())
    delivery = _delivery(session, webhook)
    [attempt] = _attempts(session, delivery)
    assert attempt.status_code == 302 and attempt.error == f"redirect to {receiver.url('/ok')} not followed"
    assert delivery.status is DeliveryStatus.pending
    assert receiver.at("/ok") == []  # the Location was never visited


def _give_up(session, webhook: Webhook) -> list:  # type: ignore[no-untyped-def]
    """Attempt until the delivery fails for good; the waits between attempts."""
    now, waits = utcnow(), []
    for _ in range(webhooks.MAX_ATTEMPTS):
        assert webhooks.send_due(session, now=now) == 1
        delivery = _delivery(session, webhook)
        if delivery.next_attempt_at is not None:
            waits.append(delivery.next_attempt_at - now)
            now = delivery.next_attempt_at
    assert webhooks.send_due(session, now=now + timedelta(days=3)) == 0
    return waits


def test_after_the_last_attempt_the_delivery_fails_and_admins_hear_of_it_once(session, receiver):
    webhook = _hook(session, receiver, "/close")
    _event(session)
    waits = _give_up(session, webhook)

    delivery = _delivery(session, webhook)
    assert delivery.status is DeliveryStatus.failed and delivery.attempts == webhooks.MAX_ATTEMPTS
    assert len(_attempts(session, delivery)) == 8 and len(waits) == 7
    # exponential: each wait about three times the one before (jitter aside), up to the cap,
    # all of them together about a day
    assert all(later > earlier * 1.5 for earlier, later in zip(waits[:5], waits[1:6], strict=True))
    assert timedelta(hours=12) < sum(waits, timedelta()) < timedelta(hours=26)
    [failed] = session.scalars(select(OutboxEvent).where(OutboxEvent.kind == "webhook_failed")).all()
    assert failed.min_role is Role.admin
    assert failed.payload["delivery_id"] == str(delivery.id) and failed.payload["attempts"] == 8
    assert failed.link == f"/admin/webhooks/{webhook.id}/deliveries"

    # a receiver of webhook_failed events that fails too raises no webhook_failed of its own
    loop = _hook(session, receiver, "/close", kinds=["webhook_failed"], name="failures")
    assert webhooks.fan_out(session, failed) == 1
    session.commit()
    _give_up(session, loop)
    assert _delivery(session, loop).status is DeliveryStatus.failed
    assert session.scalar(select(func.count()).select_from(OutboxEvent)
                          .where(OutboxEvent.kind == "webhook_failed")) == 1


def test_backoff_grows_three_fold_with_jitter_and_a_cap():
    assert webhooks.backoff(1, rand=lambda a, b: 1.0) == timedelta(minutes=1)
    assert webhooks.backoff(3, rand=lambda a, b: 1.0) == timedelta(minutes=9)
    assert webhooks.backoff(7, rand=lambda a, b: 1.0) == timedelta(hours=12)
    assert webhooks.backoff(2, rand=lambda a, b: a) == timedelta(minutes=3) * 0.8
    assert webhooks.backoff(2, rand=lambda a, b: b) == timedelta(minutes=3) * 1.2


def test_a_test_delivery_is_sent_once_and_never_raises_webhook_failed(session, receiver):
    webhook = _hook(session, receiver, "/ok")
    test = webhooks.send_test(session, ADMIN, webhook.id)
    assert webhooks.send_deliveries(session, [test.id]) == 1
    [got] = receiver.at("/ok")
    assert got.event == "test" and got.signature_ok and json.loads(got.body)["event"] == "test"
    assert session.get(WebhookDelivery, test.id).status is DeliveryStatus.succeeded

    broken = _hook(session, receiver, "/close")
    test = webhooks.send_test(session, ADMIN, broken.id)
    webhooks.send_due(session, now=utcnow())
    session.expire_all()
    assert session.get(WebhookDelivery, test.id).status is DeliveryStatus.failed  # no retries
    assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0


def test_the_guard_refuses_at_delivery_too(app, session, receiver):
    webhook = _hook(session, receiver, "/ok")  # saved while private addresses were allowed
    session.execute(Webhook.__table__.update().values(url=receiver.url("/ok").replace("127.0.0.1", "localhost")))
    session.commit()
    _event(session)
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False

    webhooks.send_due(session, now=utcnow())
    delivery = _delivery(session, webhook)
    [attempt] = _attempts(session, delivery)
    assert attempt.error.startswith("refused, not sent: localhost resolves to ")
    assert "loopback" in attempt.error and attempt.status_code is None
    assert receiver.received == []
    assert delivery.status is DeliveryStatus.pending  # retried: the setting may change back


def test_turning_a_webhook_off_drops_its_pending_deliveries(session, receiver):
    webhook = _hook(session, receiver, "/ok")
    _event(session)
    webhooks.update(session, ADMIN, webhook.id, name=webhook.name, url=webhook.url, kinds=webhook.kinds,
                    active=False)
    delivery = _delivery(session, webhook)
    assert delivery.status is DeliveryStatus.failed
    assert _attempts(session, delivery)[0].error == "not sent: the webhook was turned off"
    assert webhooks.send_due(session, now=utcnow()) == 0 and receiver.received == []
    with pytest.raises(InvalidState):
        webhooks.redeliver(session, ADMIN, delivery.id)


def test_the_secret_is_shown_once_stored_encrypted_and_never_audited(session, receiver):
    webhook, secret = webhooks.create(session, ADMIN, name="CI", url=receiver.url("/ok"),
                                      kinds=["import_failed"])
    assert secret.startswith("whsec_") and len(secret) > 40
    assert secret not in webhook.secret_encrypted
    assert crypto.decrypt(session, webhook.secret_encrypted) == secret
    renewed = webhooks.regenerate_secret(session, ADMIN, webhook.id)
    assert renewed != secret and crypto.decrypt(session, webhook.secret_encrypted) == renewed
    webhooks.delete(session, ADMIN, webhook.id)

    events = session.scalars(select(AuditEvent).where(AuditEvent.entity_type == "webhook")
                             .order_by(AuditEvent.id)).all()
    assert [e.action.value for e in events] == ["create", "update", "delete"]
    assert events[0].changes["secret"] == [None, audit.MASK]
    assert events[1].changes == {"secret": [audit.MASK, audit.MASK]}
    dumped = json.dumps([[e.changes, e.message] for e in events])
    assert secret not in dumped and renewed not in dumped
    assert audit.verify(session).ok


def test_bad_input_is_refused_naming_the_field(app, session):
    with pytest.raises(ValidationFailed) as refused:
        webhooks.create(session, ADMIN, name=" ", url="ftp://example.com/", kinds=["nope"])
    assert set(refused.value.errors) == {"name", "url", "kinds"}
    with pytest.raises(ValidationFailed) as refused:
        webhooks.create(session, ADMIN, name="x\x00", url="https://93.184.215.14/\x00", kinds=[])
    assert set(refused.value.errors) == {"name", "url", "kinds"}
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    with pytest.raises(ValidationFailed) as refused:
        webhooks.create(session, ADMIN, name="local", url="http://localhost:8080/hook", kinds=["lockout"])
    assert refused.value.errors["url"].startswith("localhost resolves to ")
    assert session.scalar(select(func.count()).select_from(Webhook)) == 0


def test_a_delivery_is_sent_by_the_webhooks_job_right_after_the_commit(app, session, receiver, require_redis):
    app.config.update(REDIS_URL=require_redis, WEBHOOK_SEND_ON_COMMIT=True)
    queue = jobs.runner.queue(webhook_jobs.QUEUE, app)
    queue.empty()
    try:
        webhook = _hook(session, receiver, "/ok")
        _event(session)
        assert queue.count == 1  # kicked after the commit, with the new delivery's id
        assert receiver.received == []
        jobs.work(app, burst=True, simple=True)
        assert _delivery(session, webhook).status is DeliveryStatus.succeeded
        assert len(receiver.at("/ok")) == 1
    finally:
        queue.empty()


def test_unknown_ids_are_not_found(session):
    from webapp.services.errors import NotFound

    for bad in ("nope", str(uuid.uuid4())):
        with pytest.raises(NotFound):
            webhooks.redeliver(session, ADMIN, bad)
        with pytest.raises(NotFound):
            webhooks.send_test(session, ADMIN, bad)


def test_key_rotation_re_encrypts_webhook_secrets(app, session, receiver):
    from cryptography.fernet import Fernet

    webhook = _hook(session, receiver, "/ok")
    secret = receiver.secrets["/ok"]
    old_keys = list(app.config["INVENTORY_ENCRYPTION_KEYS"])
    new_key = Fernet.generate_key().decode()
    app.config["INVENTORY_ENCRYPTION_KEYS"] = [new_key, *old_keys]
    app.extensions.pop("inventory_cipher", None)
    crypto.rotate(session, ADMIN)

    app.config["INVENTORY_ENCRYPTION_KEYS"] = [new_key]  # the old key retired
    app.extensions.pop("inventory_cipher", None)
    session.expire_all()
    assert crypto.decrypt(session, session.get(Webhook, webhook.id).secret_encrypted) == secret
    _event(session)
    webhooks.send_due(session, now=utcnow())
    assert [r.signature_ok for r in receiver.at("/ok")] == [True]


def test_an_event_reaches_the_receiver_through_the_outbox_dispatcher(app, session, receiver, require_redis):
    """End to end on a real RQ worker: the change's commit kicks the dispatcher, whose commit
    (fan_out's deliveries) kicks the webhooks job, which sends."""
    app.config.update(REDIS_URL=require_redis, WEBHOOK_SEND_ON_COMMIT=True)
    queues = [jobs.runner.queue(name, app) for name in jobs.runner.queue_names()]
    for queue in queues:
        queue.empty()
    try:
        webhook = _hook(session, receiver, "/ok", kinds=["lockout"])
        outbox.emit(session, "lockout", subject="An account was locked out", payload={"user": "x"})
        session.commit()
        jobs.work(app, burst=True, simple=True)
        [got] = receiver.at("/ok")
        assert got.event == "lockout" and got.signature_ok
        assert json.loads(got.body)["data"] == {"user": "x"}
        assert _delivery(session, webhook).status is DeliveryStatus.succeeded
    finally:
        for queue in queues:
            queue.empty()


def test_a_webhook_whose_url_is_now_refused_can_still_be_turned_off(app, session, receiver):
    webhook = _hook(session, receiver, "/ok")
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False  # its URL (127.0.0.1) would be refused today
    webhooks.update(session, ADMIN, webhook.id, name="kept", url=webhook.url, kinds=webhook.kinds, active=False)
    assert (webhook.name, webhook.active) == ("kept", False)
    with pytest.raises(ValidationFailed) as refused:  # but a new URL is checked
        webhooks.update(session, ADMIN, webhook.id, name="kept", url=receiver.url("/other"),
                        kinds=webhook.kinds, active=False)
    assert "loopback" in refused.value.errors["url"]


def test_two_senders_never_send_the_same_attempt(app, session, receiver):
    """While one sender waits on a slow receiver, the delivery is leased: a second sweep skips it."""
    import threading

    from webapp.extensions import db

    webhook = _hook(session, receiver, "/hang")
    _event(session)
    now = utcnow()
    sent: list[int] = []

    def first_sender() -> None:
        with app.app_context():
            try:
                sent.append(webhooks.send_due(db.session, now=now))
            finally:
                db.session.remove()

    thread = threading.Thread(target=first_sender)
    thread.start()
    deadline = time.monotonic() + 5
    while not receiver.at("/hang") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert receiver.at("/hang")  # the first sender is inside its attempt
    assert webhooks.send_due(session, now=now) == 0
    thread.join(10)
    assert sent == [1] and len(receiver.at("/hang")) == 1
    assert len(_attempts(session, _delivery(session, webhook))) == 1
