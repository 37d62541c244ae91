"""Helpers shared by the API blueprints."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
from flask import Response, current_app
from flask_smorest import Blueprint

from webapp.api import schemas
from webapp.services import listing
from webapp.services.audit import jsonable

MAX_EVENT_ID = 2**63 - 1  # audit event ids are a BIGINT


def document_errors(blp: Blueprint, codes: tuple[int, ...]) -> Callable[[Any], Any]:
    """Document each error status of an operation as a problem+json response."""

    def decorator(view: Any) -> Any:
        for code in codes:
            view = blp.alt_response(
                code, schema=schemas.Problem, content_type="application/problem+json"
            )(view)
        return view

    return decorator


def int_cursor(cursor: str | None, maximum: int = MAX_EVENT_ID) -> int | None:
    """A page cursor that is a plain number (an event id, a run number, a record position) as
    an int; 422 naming `cursor` when it is not one or exceeds the column's `maximum`."""
    if cursor is None:
        return None
    return int(listing.decode_cursor(cursor, listing.Integer(0, maximum))[0])


def event_cursor(cursor: str | None) -> int | None:
    """An audit page cursor (an event id, a BIGINT)."""
    return int_cursor(cursor, MAX_EVENT_ID)


# AuditEvent's fields, in the schema's order
AUDIT_FIELDS = tuple(schemas.AuditEvent().fields)


def audit_page(events: list[Any], next_cursor: str | None) -> Response:
    """An AuditPage answer, written straight to JSON (orjson) in the schema's shape instead of
    through marshmallow, which cost more than the page's query: each event's fields as the
    schema dumps them (timestamps in ISO form, uuids and the action as text)."""
    items = []
    for event in events:
        item = {name: getattr(event, name) for name in AUDIT_FIELDS}
        item["occurred_at"] = item["occurred_at"].isoformat()
        item["action"] = item["action"].value
        if item["actor_id"] is not None:
            item["actor_id"] = str(item["actor_id"])
        items.append(item)
    return json_response({"items": items, "next_cursor": next_cursor})


def json_response(body: Any) -> Response:
    """A 200 JSON answer written by orjson (timestamps through `jsonable`, as isoformat writes
    them); the standard module when orjson refuses a value (an integer past 64 bits, which
    metadata may hold), so such an answer is slower, never a 500."""
    try:
        text = orjson.dumps(body, default=jsonable, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except TypeError:  # orjson.JSONEncodeError
        text = json.dumps(body, default=jsonable, separators=(",", ":")).encode()
    return current_app.response_class(text, mimetype="application/json")
