"""/api/v1/webhooks (SPEC §7, §13): admin tokens only; POST answers the secret once, lists never
show it; 422 names the field (the URL guard's reason for `url`); deliveries with every attempt."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from tests import webhook_receiver
from tests.api.conftest import assert_problem, field_errors
from webapp.models import AuditEvent, Webhook
from webapp.models.base import utcnow
from webapp.services import crypto, outbox, webhooks
from webapp.services.actor import Actor

PUBLIC_URL = "https://93.184.215.14/hooks/inventory"


@pytest.fixture
def app_config(app_config):  # type: ignore[no-untyped-def]
    return {**app_config, "WEBHOOK_TIMEOUT_SECONDS": 1.0, "WEBHOOK_SEND_ON_COMMIT": False}


def _body(**overrides) -> dict:  # type: ignore[no-untyped-def]
    return {"name": "SIEM", "url": PUBLIC_URL, "kinds": ["import_failed", "lockout"], **overrides}


def test_post_answers_the_secret_once_and_lists_never_show_it(client, admin, session):
    created = client.post("/api/v1/webhooks", json=_body(), headers=admin.headers)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    secret = body.pop("secret")
    assert secret.startswith("whsec_")
    assert body["name"] == "SIEM" and body["url"] == PUBLIC_URL and body["active"] is True
    assert body["kinds"] == ["import_failed", "lockout"] and body["last_delivery"] is None
    session.expire_all()
    stored = session.get(Webhook, uuid.UUID(body["id"]))
    assert crypto.decrypt(session, stored.secret_encrypted) == secret

    listed = client.get("/api/v1/webhooks", headers=admin.headers)
    assert listed.status_code == 200
    text = listed.get_data(as_text=True)
    assert secret not in text and "secret" not in text
    assert [w["id"] for w in listed.get_json()["items"]] == [body["id"]]
    deliveries = client.get(f"/api/v1/webhooks/{body['id']}/deliveries", headers=admin.headers)
    assert deliveries.status_code == 200 and deliveries.get_json() == {"items": []}

    audited = session.scalars(select(AuditEvent).where(AuditEvent.entity_type == "webhook")).all()
    assert len(audited) == 1 and secret not in json.dumps(audited[0].changes)


@pytest.mark.parametrize(("body", "field", "says"), [
    (_body(url="ftp://example.com/x"), "url", "Only http and https"),
    (_body(url="http://localhost:8080/"), "url", "localhost resolves to"),
    (_body(url="http://10.1.2.3/"), "url", "private network"),
    (_body(url="http://[fd00:ec2::254]/"), "url", "cloud metadata"),
    (_body(url="https://admin:pw@93.184.215.14/"), "url", "user name and password"),
    (_body(url="not a url"), "url", "spaces"),
    (_body(kinds=["nope"]), "kinds.0", "Choose among the event kinds"),
    (_body(kinds=[]), "kinds", "Length must be between 1"),
    (_body(name="x\x00"), "name", "NUL"),
    ({"url": PUBLIC_URL, "kinds": ["lockout"]}, "name", "required"),
    (_body(secret="mine"), "secret", "Unknown field"),
])
def test_bad_input_is_a_422_naming_the_field(client, admin, session, body, field, says):
    response = client.post("/api/v1/webhooks", json=body, headers=admin.headers)
    errors = field_errors(assert_problem(response, 422))
    assert field in errors and says in errors[field], errors
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Webhook)) == 0


def test_https_is_required_outside_development(app, client, admin):
    app.config["ENV_NAME"] = "production"
    response = client.post("/api/v1/webhooks", json=_body(url="http://93.184.215.14/x"), headers=admin.headers)
    assert "Use an https URL" in field_errors(assert_problem(response, 422))["url"]


@pytest.mark.parametrize("role", ["viewer", "analyst", "reviewer"])
def test_other_roles_get_403(client, make_token, session, role):
    webhook, _ = webhooks.create(session, Actor.system("test"), name="x", url=PUBLIC_URL, kinds=["lockout"])
    token = make_token(role)
    for method, path in [("get", "/api/v1/webhooks"), ("post", "/api/v1/webhooks"),
                         ("get", f"/api/v1/webhooks/{webhook.id}/deliveries")]:
        response = getattr(client, method)(path, json=_body() if method == "post" else None, headers=token.headers)
        assert "admin" in assert_problem(response, 403)["detail"]
    read_only_admin = make_token("admin", read_only=True)
    assert_problem(client.post("/api/v1/webhooks", json=_body(), headers=read_only_admin.headers), 403)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Webhook)) == 1


def test_deliveries_show_every_attempt(app, client, admin, session):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    receiver = webhook_receiver.start(webhook_receiver.Receiver())
    try:
        created = client.post("/api/v1/webhooks", json=_body(url=receiver.url("/flaky"), kinds=["lockout"]),
                              headers=admin.headers).get_json()
        receiver.secrets["/flaky"] = created["secret"]
        event = outbox.emit(session, "lockout", subject="An account was locked out")
        session.flush()
        assert webhooks.fan_out(session, event) == 1
        session.commit()
        now = utcnow()
        webhooks.send_due(session, now=now)
        pending = client.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=admin.headers).get_json()
        [delivery] = pending["items"]
        assert delivery["status"] == "pending" and delivery["round_attempts"] == 1
        assert delivery["event_id"] == str(event.id) and delivery["kind"] == "lockout"
        assert delivery["attempts"][0]["status_code"] == 500
        webhooks.send_due(session, now=now + webhooks.BACKOFF_CAP)
        done = client.get(f"/api/v1/webhooks/{created['id']}/deliveries?limit=1", headers=admin.headers).get_json()
        [delivery] = done["items"]
        assert delivery["status"] == "succeeded"
        assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
        assert delivery["attempts"][1]["response_excerpt"] == "ok"
        assert receiver.at("/flaky")[0].delivery_id == delivery["id"]
        listed = client.get("/api/v1/webhooks", headers=admin.headers).get_json()
        assert listed["items"][0]["last_delivery"]["status"] == "succeeded"
    finally:
        webhook_receiver.shut(receiver)


def test_unknown_webhook_and_bad_limit(client, admin):
    assert_problem(client.get(f"/api/v1/webhooks/{uuid.uuid4()}/deliveries", headers=admin.headers), 404)
    assert_problem(client.get("/api/v1/webhooks/nope/deliveries", headers=admin.headers), 404)
    webhook = client.post("/api/v1/webhooks", json=_body(), headers=admin.headers).get_json()
    response = client.get(f"/api/v1/webhooks/{webhook['id']}/deliveries?limit=0", headers=admin.headers)
    assert "limit" in field_errors(assert_problem(response, 422))
