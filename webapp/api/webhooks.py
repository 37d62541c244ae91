"""/api/v1/webhooks (SPEC §13): admins list and register webhooks and read each one's deliveries.
The secret is in the answer to POST only; it is never listed or shown again."""

from __future__ import annotations

import uuid
from typing import Any

from webapp.api import webhook_schemas as schemas
from webapp.api.auth import SECURITY, api_actor, token_required
from webapp.api.common import document_errors
from webapp.api.parsing import ApiBlueprint
from webapp.extensions import db
from webapp.models import Role, Webhook
from webapp.services import webhook_history, webhooks

blp = ApiBlueprint(
    "api_webhooks", __name__, url_prefix="/api/v1",
    description="Webhooks (admin tokens): receivers of signed event deliveries, and what was "
                "delivered to each.",
)


def _webhook(webhook: Webhook, last: webhook_history.Listed | None = None) -> dict[str, Any]:
    return {"id": webhook.id, "name": webhook.name, "url": webhook.url, "kinds": list(webhook.kinds),
            "active": webhook.active, "created_at": webhook.created_at, "updated_at": webhook.updated_at,
            "last_delivery": {"status": last.last_status.value, "created_at": last.last_at}
            if last is not None and last.last_status is not None else None}


@blp.route("/webhooks", methods=["GET"])
@token_required(Role.admin)
@blp.doc(security=SECURITY)
@blp.response(200, schemas.WebhookList)
@document_errors(blp, (401, 403))
def list_webhooks() -> dict[str, Any]:
    """Every webhook by name, with its newest delivery's status (never its secret)."""
    return {"items": [_webhook(row.webhook, row) for row in webhook_history.list_webhooks(db.session)]}


@blp.route("/webhooks", methods=["POST"])
@token_required(Role.admin, write=True)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.WebhookIn, as_kwargs=False)
@blp.response(201, schemas.WebhookCreated)
@document_errors(blp, (400, 401, 403, 413, 422))
def create_webhook(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Register a webhook. The answer holds its `secret`, this once. Audited (the secret
    masked). 422 names the field: `url` with the guard's reason (not http(s), user name in the
    URL, a loopback, private, link-local or metadata address, http outside development)."""
    webhook, secret = webhooks.create(db.session, api_actor(), name=body["name"], url=body["url"],
                                      kinds=body["kinds"], active=body["active"])
    return {**_webhook(webhook), "secret": secret}, 201


@blp.route("/webhooks/<uuid:webhook_id>/deliveries", methods=["GET"])
@token_required(Role.admin)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.DeliveryArgs, location="query", as_kwargs=False)
@blp.response(200, schemas.DeliveryList)
@document_errors(blp, (401, 403, 404, 422))
def list_deliveries(args: dict[str, Any], webhook_id: uuid.UUID) -> dict[str, Any]:
    """The webhook's newest deliveries (`limit`, at most 200), each with every attempt."""
    rows = webhook_history.deliveries(db.session, webhook_id, limit=args["limit"])
    return {"items": [{
        "id": r.delivery.id, "event_id": r.delivery.event_id, "kind": r.delivery.kind,
        "status": r.delivery.status.value, "round_attempts": r.delivery.attempts,
        "next_attempt_at": r.delivery.next_attempt_at, "created_at": r.delivery.created_at,
        "finished_at": r.delivery.finished_at,
        "attempts": [{"attempted_at": a.attempted_at, "status_code": a.status_code,
                      "duration_ms": a.duration_ms, "response_excerpt": a.response_excerpt,
                      "error": a.error} for a in r.attempts],
    } for r in rows]}
