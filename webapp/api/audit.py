"""/api/v1/audit: the global audit log with filters."""

from __future__ import annotations

from typing import Any

from flask import Response

from webapp.api import schemas
from webapp.api.auth import SECURITY, token_required
from webapp.api.common import audit_page, document_errors, event_cursor
from webapp.api.parsing import ApiBlueprint as Blueprint
from webapp.extensions import db
from webapp.models import Role
from webapp.services import audit_log

blp = Blueprint("api_audit", __name__, url_prefix="/api/v1/audit", description="The audit log.")


@blp.route("", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.AuditListArgs, location="query", as_kwargs=False)
@blp.response(200, schemas.AuditPage)
@document_errors(blp, (401, 403, 422))
def list_events(args: dict[str, Any]) -> Response:
    """Audit events, newest first, filtered by actor, action, entity and date."""
    query = audit_log.parse_query({
        "actor": args.get("actor"),
        "action": args.get("action"),
        "entity_type": args.get("entity_type"),
        "entity_id": args.get("entity_id"),
        "since": args["since"].isoformat() if args.get("since") else None,
        "until": args["until"].isoformat() if args.get("until") else None,
        "limit": str(args["limit"]),
    }, max_limit=500)
    query.before_id = event_cursor(args.get("cursor"))
    events, before = audit_log.events(db.session, query)
    return audit_page(events, str(before) if before else None)
