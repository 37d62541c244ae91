"""/api/v1/proposals: manual edits waiting for a second person's approval (SPEC §5). A PATCH of
an asset that `approval_required` covers answers 202 with one of these; a reviewer or admin
other than the proposer approves it (applied) or rejects it (with a reason)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, url_for
from werkzeug.wrappers import Response

from webapp.api import proposal_schemas as schemas
from webapp.api.auth import SECURITY, api_actor, token_required
from webapp.api.common import document_errors
from webapp.api.parsing import ApiBlueprint
from webapp.extensions import db
from webapp.models import Asset, Proposal, ProposalStatus, Role
from webapp.services import proposals

blp = ApiBlueprint(
    "api_proposals", __name__, url_prefix="/api/v1/proposals",
    description="Proposed changes: manual edits to assets that need a second person's approval.",
)
LOCATION = {"Location": {"description": "The proposal", "schema": {"type": "string"}}}


def as_json(proposal: Proposal) -> dict[str, Any]:
    asset = db.session.get(Asset, proposal.asset_id)
    stale = proposal.is_open and (asset is None or proposals.is_stale(asset, proposal))
    return {
        "id": proposal.id, "asset_id": proposal.asset_id, "status": proposal.status.value,
        "base_version": proposal.base_version, "changes": proposal.changes, "stale": stale,
        "proposed_by": proposal.proposed_by, "proposed_by_label": proposal.proposed_by_label,
        "created_at": proposal.created_at, "change_set_id": proposal.change_set_id,
        "decided_by": proposal.decided_by, "decided_by_label": proposal.decided_by_label,
        "decided_at": proposal.decided_at, "reason": proposal.reason,
        "applied_version": proposal.applied_version,
    }


def accepted(proposal: Proposal) -> Response:
    """202 with the proposal and its Location: the edit waits for approval."""
    location = url_for("api_proposals.get_proposal", proposal_id=proposal.id)
    response = current_app.json.response({**schemas.Proposal().dump(as_json(proposal)), "location": location})
    response.status_code = 202
    response.headers["Location"] = location
    return response


@blp.route("", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.ProposalListArgs, location="query", as_kwargs=False)
@blp.response(200, schemas.ProposalList)
@document_errors(blp, (401, 403, 422))
def list_proposals(args: dict[str, Any]) -> dict[str, Any]:
    """Proposed changes, newest first; by default the open ones."""
    status = None if args["status"] == "any" else ProposalStatus(args["status"])
    rows = proposals.list_proposals(db.session, status=status, asset_id=args.get("asset_id"),
                                    limit=args["limit"])
    return {"items": [as_json(row.proposal) for row in rows]}


@blp.route("/<uuid:proposal_id>", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.response(200, schemas.Proposal)
@document_errors(blp, (401, 403, 404))
def get_proposal(proposal_id: uuid.UUID) -> dict[str, Any]:
    """One proposed change, open or decided."""
    return as_json(proposals.get(db.session, proposal_id))


@blp.route("/<uuid:proposal_id>/approve", methods=["POST"])
@token_required(Role.reviewer, write=True)
@blp.doc(security=SECURITY)
@blp.response(200, schemas.Proposal)
@document_errors(blp, (401, 403, 404, 409, 422))
def approve_proposal(proposal_id: uuid.UUID) -> dict[str, Any]:
    """Approve: the change is applied to the asset as one change (audited `approve`, naming
    the proposer and the approver). 403 for the proposer; 409 when it is decided already or
    stale (the asset changed since it was proposed: rebase or reject it)."""
    return as_json(proposals.approve(db.session, api_actor(), proposal_id))


@blp.route("/<uuid:proposal_id>/reject", methods=["POST"])
@token_required(Role.reviewer, write=True)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.RejectBody, as_kwargs=False)
@blp.response(200, schemas.Proposal)
@document_errors(blp, (400, 401, 403, 404, 409, 422))
def reject_proposal(body: dict[str, Any], proposal_id: uuid.UUID) -> dict[str, Any]:
    """Reject with a reason (required): the asset stays as it is (audited `reject`)."""
    return as_json(proposals.reject(db.session, api_actor(), proposal_id, body["reason"]))


@blp.route("/<uuid:proposal_id>/rebase", methods=["POST"])
@token_required(Role.analyst, write=True)
@blp.doc(security=SECURITY)
@blp.response(200, schemas.Proposal)
@document_errors(blp, (401, 403, 404, 409, 422))
def rebase_proposal(proposal_id: uuid.UUID) -> dict[str, Any]:
    """Move a stale proposal onto the asset's current version (the proposer, or a reviewer):
    the diff is recomputed against the values now; it then waits for approval again."""
    return as_json(proposals.rebase(db.session, api_actor(), proposal_id))
