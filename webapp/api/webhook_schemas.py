"""Schemas of the webhooks API (SPEC §13): webhooks (the secret only in the answer to a create),
and a webhook's deliveries with every attempt."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from webapp.api.schemas import NO_NUL, StrictSchema
from webapp.models import DeliveryStatus
from webapp.services import outbox, webhook_urls, webhooks


class WebhookIn(StrictSchema):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=webhooks.NAME_MAX), NO_NUL])
    url = fields.String(required=True, validate=[validate.Length(min=1, max=webhook_urls.URL_MAX), NO_NUL],
                        metadata={"description": "https outside development; a public address unless "
                                                 "WEBHOOK_ALLOW_PRIVATE=true (checked after DNS)."})
    kinds = fields.List(fields.String(validate=validate.OneOf(list(outbox.KINDS),
                                                              error="Choose among the event kinds.")),
                        required=True, validate=validate.Length(min=1, max=len(outbox.KINDS)),
                        metadata={"description": "Event kinds to send: " + ", ".join(outbox.KINDS)})
    active = fields.Boolean(load_default=True, truthy={True}, falsy={False})


class LastDelivery(Schema):
    class Meta:
        ordered = True

    status = fields.String(validate=validate.OneOf([s.value for s in DeliveryStatus]))
    created_at = fields.DateTime()


class WebhookOut(Schema):
    class Meta:
        ordered = True

    id = fields.UUID()
    name = fields.String()
    url = fields.String()
    kinds = fields.List(fields.String())
    active = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    last_delivery = fields.Nested(LastDelivery, allow_none=True)


class WebhookCreated(WebhookOut):
    secret = fields.String(metadata={"description": "The HMAC secret that signs every delivery "
                                                    "(X-Inventory-Signature). Shown in this answer "
                                                    "only; store it now."})


class WebhookList(Schema):
    items = fields.List(fields.Nested(WebhookOut))


class Attempt(Schema):
    class Meta:
        ordered = True

    attempted_at = fields.DateTime()
    status_code = fields.Integer(allow_none=True)
    duration_ms = fields.Integer()
    response_excerpt = fields.String(allow_none=True, metadata={"description": "The response's first 500 bytes."})
    error = fields.String(allow_none=True, metadata={"description": "Why the attempt failed: refused by "
                                                                    "the URL guard, timeout, connection "
                                                                    "closed, a non-2xx answer, a redirect."})


class Delivery(Schema):
    class Meta:
        ordered = True

    id = fields.UUID(metadata={"description": "The X-Inventory-Delivery header: the same on every "
                                              "retry and redelivery."})
    event_id = fields.UUID(metadata={"description": "The body's id (the outbox event)."})
    kind = fields.String()
    status = fields.String(validate=validate.OneOf([s.value for s in DeliveryStatus]))
    round_attempts = fields.Integer(metadata={"description": "Attempts since it was (re)queued."})
    next_attempt_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    attempts = fields.List(fields.Nested(Attempt), metadata={"description": "Every attempt, oldest first."})


class DeliveryArgs(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class DeliveryList(Schema):
    items = fields.List(fields.Nested(Delivery))
