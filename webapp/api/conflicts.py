"""/api/v1/conflicts: the review queue. Everyone with a token reads it; reviewers and admins
resolve items with a read-write token (SPEC §4)."""

from __future__ import annotations

import uuid
from typing import Any

from webapp.api import conflict_schemas as schemas
from webapp.api.auth import SECURITY, api_actor, token_required
from webapp.api.common import document_errors
from webapp.api.parsing import ApiBlueprint
from webapp.extensions import db
from webapp.models import Conflict, ConflictKind, ConflictStatus, ImportRun, Role
from webapp.services import conflicts

blp = ApiBlueprint(
    "api_conflicts", __name__, url_prefix="/api/v1/conflicts",
    description="The review queue: possible duplicates and field conflicts matching could not "
                "decide alone.",
)


def _conflict(conflict: Conflict, import_number: int | None) -> dict[str, Any]:
    return {
        "id": conflict.id, "kind": conflict.kind.value, "status": conflict.status.value,
        "import_run_id": conflict.import_run_id, "import_number": import_number,
        "record_key": conflict.record_key, "candidate_id": conflict.candidate_id,
        "duplicate_id": conflict.duplicate_id, "confidence": conflict.confidence,
        "reasons": conflict.reasons or [], "incoming": conflict.incoming or {},
        "fields": conflict.fields or {}, "resolution": conflict.resolution,
        "result_asset_id": conflict.result_asset_id, "resolved_by": conflict.resolved_by,
        "resolved_at": conflict.resolved_at, "created_at": conflict.created_at,
    }


def _one(conflict: Conflict) -> dict[str, Any]:
    run = db.session.get(ImportRun, conflict.import_run_id) if conflict.import_run_id else None
    return _conflict(conflict, run.number if run else None)


@blp.route("", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.ConflictListArgs, location="query", as_kwargs=False)
@blp.response(200, schemas.ConflictPage)
@document_errors(blp, (401, 403, 422))
def list_conflicts(args: dict[str, Any]) -> dict[str, Any]:
    """Review items, newest first; by default the open ones."""
    status = None if args["status"] == "any" else ConflictStatus(args["status"])
    page = conflicts.list_conflicts(
        db.session, status=status, kind=ConflictKind(args["kind"]) if args.get("kind") else None,
        import_run_id=args.get("import_id"), min_confidence=args.get("min_confidence"),
        limit=args["limit"], cursor=args.get("cursor"),
    )
    return {"items": [_conflict(row.conflict, row.run_number) for row in page.items],
            "next_cursor": page.next_cursor}


@blp.route("/<uuid:conflict_id>", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.response(200, schemas.Conflict)
@document_errors(blp, (401, 403, 404))
def get_conflict(conflict_id: uuid.UUID) -> dict[str, Any]:
    """One review item, open or resolved."""
    return _one(conflicts.get(db.session, conflict_id))


@blp.route("/<uuid:conflict_id>/resolve", methods=["POST"])
@token_required(Role.reviewer, write=True)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.ResolveBody, as_kwargs=False)
@blp.response(200, schemas.Conflict)
@document_errors(blp, (400, 401, 403, 404, 409, 422))
def resolve_conflict(body: dict[str, Any], conflict_id: uuid.UUID) -> dict[str, Any]:
    """Resolve an open item (reviewer or admin, read-write token).

    `merge`: the values chosen `incoming` go to the candidate (two assets: the duplicate goes
    into the candidate); `create`: a new asset from the incoming record; `dismiss`: nothing
    changes. Fields left out take the default: incoming only where the current value is empty
    (a field conflict: current). 409 when the item is not open any more or its asset left
    meanwhile; 422 for an action or choice that does not apply.
    """
    conflict = conflicts.resolve(db.session, api_actor(), conflict_id, body["action"],
                                 body.get("fields"))
    return _one(conflict)
