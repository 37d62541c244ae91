"""/admin/webhooks (SPEC §13): admins only; list, new and edit forms (422 naming the field), the
secret shown once, Send test and the deliveries page with each attempt and Redeliver."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import event, func, select

from tests import webhook_receiver
from webapp.models import AuditEvent, DeliveryStatus, Webhook, WebhookDelivery
from webapp.models.base import utcnow
from webapp.services import crypto, outbox, webhooks
from webapp.services.actor import Actor

PUBLIC_URL = "https://93.184.215.14/hooks/inventory"  # a public address: no DNS needed


@pytest.fixture
def app_config(app_config):  # type: ignore[no-untyped-def]
    return {**app_config, "WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_TIMEOUT_SECONDS": 1.0,
            "WEBHOOK_SEND_ON_COMMIT": False}


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    r = webhook_receiver.start(webhook_receiver.Receiver())
    yield r
    webhook_receiver.shut(r)


def _form(**overrides) -> dict:  # type: ignore[no-untyped-def]
    data = {"name": "SIEM", "url": PUBLIC_URL, "kinds": ["import_failed", "lockout"], "active": "y"}
    data.update(overrides)
    return data


@pytest.mark.parametrize("role", ["viewer", "analyst", "reviewer"])
def test_only_admins_reach_the_webhook_pages(client, login_as, session, role):
    webhook, _secret = webhooks.create(session, Actor.system("t"), name="x", url=PUBLIC_URL, kinds=["lockout"])
    login_as(role)
    for method, path in [
        ("get", "/admin/webhooks"), ("get", "/admin/webhooks/new"), ("post", "/admin/webhooks/new"),
        ("get", f"/admin/webhooks/{webhook.id}"), ("post", f"/admin/webhooks/{webhook.id}"),
        ("post", f"/admin/webhooks/{webhook.id}/secret"), ("post", f"/admin/webhooks/{webhook.id}/test"),
        ("post", f"/admin/webhooks/{webhook.id}/delete"), ("get", f"/admin/webhooks/{webhook.id}/deliveries"),
        ("post", f"/admin/webhooks/deliveries/{uuid.uuid4()}/redeliver"),
    ]:
        response = getattr(client, method)(path, data=_form() if method == "post" else None)
        assert response.status_code == 403, (method, path)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Webhook)) == 1
    assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_anonymous_is_sent_to_sign_in(client, make_user):
    make_user("admin")  # past first-run setup
    response = client.get("/admin/webhooks")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_empty_list_says_what_to_do(client, login_as):
    login_as("admin")
    page = client.get("/admin/webhooks")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "No webhooks yet" in html and 'href="/admin/webhooks/new"' in html
    partial = client.get("/admin/webhooks", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in partial.get_data(as_text=True)
    assert "No webhooks yet" in partial.get_data(as_text=True)


def test_create_shows_the_secret_once(client, login_as, session):
    login_as("admin")
    form = client.get("/admin/webhooks/new").get_data(as_text=True)
    for kind, label in outbox.KINDS.items():
        assert f'value="{kind}"' in form and label in form  # one labelled checkbox per kind
    assert '<label for="name">Name</label>' in form and '<label for="url">URL</label>' in form

    created = client.post("/admin/webhooks/new", data=_form())
    assert created.status_code == 201
    html = created.get_data(as_text=True)
    session.expire_all()
    webhook = session.scalars(select(Webhook)).one()
    secret = crypto.decrypt(session, webhook.secret_encrypted)
    assert secret in html and "only time it is shown" in html
    assert (webhook.name, webhook.url, webhook.kinds, webhook.active) == (
        "SIEM", PUBLIC_URL, ["import_failed", "lockout"], True)

    for path in ("/admin/webhooks", f"/admin/webhooks/{webhook.id}", f"/admin/webhooks/{webhook.id}/deliveries"):
        assert secret not in client.get(path).get_data(as_text=True)
    listing = client.get("/admin/webhooks").get_data(as_text=True)
    assert "SIEM" in listing and "none yet" in listing

    renewed = client.post(f"/admin/webhooks/{webhook.id}/secret")
    session.expire_all()
    new_secret = crypto.decrypt(session, session.get(Webhook, webhook.id).secret_encrypted)
    assert renewed.status_code == 200 and new_secret != secret and new_secret in renewed.get_data(as_text=True)
    changes = " ".join(str(e.changes) + str(e.message) for e in session.scalars(select(AuditEvent)))
    assert secret not in changes and new_secret not in changes


@pytest.mark.parametrize(("data", "field", "says"), [
    (_form(url="ftp://example.com/"), "url", "Only http and https"),
    (_form(url="http://user:pw@93.184.215.14/"), "url", "user name and password"),
    (_form(url="http://169.254.169.254/latest/meta-data"), "url", "cloud metadata"),
    (_form(name=""), "name", "Give the webhook a name"),
    (_form(kinds=[]), "kinds", "Choose at least one kind"),
    (_form(kinds=["nope"]), "kinds", "Choose among the listed kinds"),
    (_form(name="a\u2028b" * 60), "name", "Keep the name under 100"),
])
def test_bad_input_is_a_422_naming_the_field(client, login_as, session, data, field, says):
    login_as("admin")
    response = client.post("/admin/webhooks/new", data=data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert says in html and f'id="{field}-help"' in html
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Webhook)) == 0


def test_nul_in_any_field_is_a_422(client, login_as, session):
    login_as("admin")
    response = client.post("/admin/webhooks/new", data=_form(name="a\x00b"))
    assert response.status_code == 422 and "NUL" in response.get_data(as_text=True)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Webhook)) == 0


def test_localhost_is_refused_on_save_with_the_setting_off(app, client, login_as, session):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    login_as("admin")
    response = client.post("/admin/webhooks/new", data=_form(url="http://localhost:9000/hook"))
    assert response.status_code == 422
    assert "localhost resolves to" in response.get_data(as_text=True)


def test_https_is_required_outside_development(app, client, login_as):
    app.config["ENV_NAME"] = "production"
    login_as("admin")
    response = client.post("/admin/webhooks/new", data=_form(url="http://93.184.215.14/hook"))
    assert response.status_code == 422 and "Use an https URL" in response.get_data(as_text=True)
    assert client.post("/admin/webhooks/new", data=_form()).status_code == 201


def test_edit_saves_and_refuses_bad_urls(app, client, login_as, session):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    login_as("admin")
    webhook, _ = webhooks.create(session, Actor.system("t"), name="x", url=PUBLIC_URL, kinds=["lockout"])
    page = client.get(f"/admin/webhooks/{webhook.id}").get_data(as_text=True)
    assert re.search(r'<input checked id="kinds-\d+" name="kinds" type="checkbox" value="lockout">', page)
    assert not re.search(r'<input checked [^>]*value="import_failed"', page)
    bad = client.post(f"/admin/webhooks/{webhook.id}", data=_form(url="http://[::1]/"))
    assert bad.status_code == 422 and "loopback" in bad.get_data(as_text=True)
    saved = client.post(f"/admin/webhooks/{webhook.id}", data=_form(name="renamed", active=""))
    assert saved.status_code == 303
    session.expire_all()
    webhook = session.get(Webhook, webhook.id)
    assert (webhook.name, webhook.active) == ("renamed", False)
    assert client.get(f"/admin/webhooks/{uuid.uuid4()}").status_code == 404
    assert client.get("/admin/webhooks/not-an-id").status_code == 404


def test_send_test_then_the_deliveries_page_shows_each_attempt_and_redelivers(client, login_as, session, receiver):
    login_as("admin")
    created = client.post("/admin/webhooks/new", data=_form(url=receiver.url("/flaky"), name="Receiver"))
    session.expire_all()
    webhook = session.scalars(select(Webhook)).one()
    receiver.secrets["/flaky"] = crypto.decrypt(session, webhook.secret_encrypted)
    assert created.status_code == 201

    empty = client.get(f"/admin/webhooks/{webhook.id}/deliveries").get_data(as_text=True)
    assert "Nothing delivered to this webhook yet" in empty

    sent = client.post(f"/admin/webhooks/{webhook.id}/test")
    assert sent.status_code == 303 and sent.headers["Location"].endswith(f"/admin/webhooks/{webhook.id}/deliveries")
    pending = client.get(f"/admin/webhooks/{webhook.id}/deliveries", headers={"HX-Request": "true"})
    body = pending.get_data(as_text=True)
    assert pending.status_code == 200 and "<html" not in body
    assert 'hx-trigger="every 1s"' in body and "Sending…" in body and "Not tried yet" in body

    webhooks.send_due(session, now=utcnow())  # what the job does a moment later: the receiver says 500
    failed = client.get(f"/admin/webhooks/{webhook.id}/deliveries").get_data(as_text=True)
    assert "every 1s" not in failed
    assert "500" in failed and "receiver down for a moment" in failed and " ms</td>" in failed
    assert "Redeliver" in failed and "badge-failed" in failed  # a test delivery is tried once

    delivery = session.scalars(select(WebhookDelivery)).one()
    again = client.post(f"/admin/webhooks/deliveries/{delivery.id}/redeliver")
    assert again.status_code == 303
    webhooks.send_due(session, now=utcnow())
    page = client.get(f"/admin/webhooks/{webhook.id}/deliveries").get_data(as_text=True)
    assert "badge-succeeded" in page and ">ok<" in page
    assert [r.delivery_id for r in receiver.at("/flaky")] == [str(delivery.id)] * 2
    listing = client.get("/admin/webhooks").get_data(as_text=True)
    assert "badge-succeeded" in listing

    # redelivering a pending one is refused with a message, not a 500
    session.expire_all()
    webhooks.redeliver(session, Actor.system("t"), delivery.id)
    refused = client.post(f"/admin/webhooks/deliveries/{delivery.id}/redeliver")
    assert refused.status_code == 409 and "still being sent" in refused.get_data(as_text=True)
    assert session.get(WebhookDelivery, delivery.id).status is DeliveryStatus.pending


def test_delete_removes_the_webhook_and_its_deliveries(client, login_as, session):
    login_as("admin")
    webhook, _ = webhooks.create(session, Actor.system("t"), name="gone", url=PUBLIC_URL, kinds=["lockout"])
    webhooks.send_test(session, Actor.system("t"), webhook.id)
    response = client.post(f"/admin/webhooks/{webhook.id}/delete")
    assert response.status_code == 303
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Webhook)) == 0
    assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


@pytest.fixture
def count_statements(client, db):  # type: ignore[no-untyped-def]
    """GET a URL (after a warm-up request) and return how many SQL statements it issued."""

    def count(url: str) -> int:
        assert client.get(url).status_code == 200
        seen: list[str] = []

        def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            assert client.get(url).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        return len(seen)

    return count


def test_the_pages_query_counts_do_not_grow_with_rows(client, login_as, session, receiver, count_statements):
    login_as("admin")
    actor = Actor.system("t")
    first, _ = webhooks.create(session, actor, name="first", url=receiver.url("/flaky"), kinds=["lockout"])
    webhooks.send_test(session, actor, first.id)
    webhooks.send_due(session, now=utcnow())
    one_webhook = count_statements("/admin/webhooks")
    one_delivery = count_statements(f"/admin/webhooks/{first.id}/deliveries")

    for i in range(4):
        other, _ = webhooks.create(session, actor, name=f"other {i}", url=receiver.url("/ok"), kinds=["lockout"])
        webhooks.send_test(session, actor, other.id)
        webhooks.send_test(session, actor, first.id)
    webhooks.send_due(session, now=utcnow())
    assert count_statements("/admin/webhooks") == one_webhook
    assert count_statements(f"/admin/webhooks/{first.id}/deliveries") == one_delivery


def test_send_test_to_an_inactive_webhook_is_refused(client, login_as, session):
    login_as("admin")
    webhook, _ = webhooks.create(session, Actor.system("t"), name="off", url=PUBLIC_URL, kinds=["lockout"],
                                 active=False)
    response = client.post(f"/admin/webhooks/{webhook.id}/test")
    assert response.status_code == 409 and "turn it on" in response.get_data(as_text=True)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
