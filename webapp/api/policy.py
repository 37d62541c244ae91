"""/api/v1/policy and /api/v1/assets/{id}/policy (SPEC §12): the controls with their parameters,
references and counts; one asset's results; stored results page by page; exceptions.

Everything read here is the stored `policy_results` (kept current with every change), never a
check run on request. Reading needs any token; granting an exception, a reviewer's (or an
admin's) read-write token.
"""

from __future__ import annotations

import uuid
from typing import Any

from webapp import policy
from webapp.api import policy_schemas as schemas
from webapp.api.auth import SECURITY, api_actor, token_required
from webapp.api.common import document_errors
from webapp.api.parsing import ApiBlueprint
from webapp.extensions import db
from webapp.models import PolicyException, PolicyResult, Role
from webapp.services import assets as asset_service
from webapp.services import policy_exceptions, policy_reports, settings

blp = ApiBlueprint(
    "api_policy", __name__, url_prefix="/api/v1",
    description="Policy and posture: controls mapped to SOC 2, GDPR, CIS and AWS FSBP, each "
                "asset's results, and exceptions.",
)


def _counts(counts: policy_reports.Counts) -> dict[str, Any]:
    return {"counts": dict(counts.by_status), "compliance": counts.compliance}


def _references(control: policy.Control) -> dict[str, list[str]]:
    return {framework: list(ids) for framework, ids in control.references.items()}


def _parameter(control: policy.Control, row: dict[str, Any]) -> dict[str, Any]:
    declared = control.parameter(row["name"])
    return {**row, "type": "boolean" if declared.type is bool else "integer",
            "minimum": declared.minimum, "maximum": declared.maximum, "unit": declared.unit}


def _exception(exception: PolicyException | None) -> dict[str, Any] | None:
    if exception is None:
        return None
    return {"id": exception.id, "asset_id": exception.asset_id, "control": exception.control_id,
            "reason": exception.reason, "expires_at": exception.expires_at,
            "granted_by": exception.granted_by, "granted_by_label": exception.granted_by_label,
            "granted_at": exception.granted_at}


@blp.route("/policy/controls", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.response(200, schemas.Controls)
@document_errors(blp, (401, 403))
def list_controls() -> dict[str, Any]:
    """Every control (parameters in force, framework references, results by status and
    compliance) and every framework (the controls citing it, their counts added up). The counts
    are /policy's, from the counts cache (dropped by every commit that writes results)."""
    counts = policy_reports.cached_control_counts(db.session)
    parameters: dict[str, list[dict[str, Any]]] = {}
    for row in policy_reports.parameters_view(settings.get(db.session, "policy_parameters") or {}):
        control_id = row.pop("control")
        parameters.setdefault(control_id, []).append(_parameter(policy.CONTROLS[control_id], row))
    controls = [{
        "id": c.id, "title": c.title, "description": c.description, "severity": c.severity.value,
        "family": c.family, "parameters": parameters.get(c.id, []), "references": _references(c),
        **_counts(counts[c.id]),
    } for c in policy.CONTROLS.values()]
    frameworks = [{
        "id": s.framework.id, "title": s.framework.title, "description": s.framework.description,
        "url": s.framework.url, "controls": [c.control.id for c in s.controls], **_counts(s.counts),
    } for s in policy_reports.frameworks(db.session, counts)]
    return {"frameworks": frameworks, "controls": controls}


@blp.route("/assets/<uuid:asset_id>/policy", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.response(200, schemas.AssetPolicy)
@document_errors(blp, (401, 403, 404))
def asset_policy(asset_id: uuid.UUID) -> dict[str, Any]:
    """The asset's applicable controls, failures first, each with its stored status, reason,
    severity, references and live exception; and the ids of the controls that do not apply
    (all of them for an asset in the trash, merged away or decommissioned)."""
    asset = asset_service.get(db.session, asset_id)
    found = policy_reports.asset_policy(db.session, asset)
    return {
        "asset_id": asset.id,
        "counts": dict(found.counts.by_status),
        "applicable": [_asset_control(row) for row in found.applicable],
        "not_applicable": [c.id for c in found.not_applicable],
    }


def _asset_control(row: policy_reports.AssetControl) -> dict[str, Any]:
    result: PolicyResult | None = row.result
    return {
        "control": row.control.id, "title": row.control.title,
        "severity": row.control.severity.value,
        "status": result.status.value if result else None,
        "reason": result.reason if result else None,
        "evaluated_at": result.evaluated_at if result else None,
        "references": _references(row.control), "exception": _exception(row.exception),
    }


@blp.route("/policy/results", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.ResultArgs, location="query", as_kwargs=False)
@blp.response(200, schemas.ResultPage)
@document_errors(blp, (401, 403, 422))
def list_results(args: dict[str, Any]) -> dict[str, Any]:
    """Stored results by asset id then control id, filtered by `control` and `status`, one
    keyset page at a time (follow `next_cursor`)."""
    page = policy_reports.results_page(db.session, control_id=args.get("control"),
                                       status=args.get("status"), limit=args["limit"],
                                       cursor=args.get("cursor"))
    return {"items": [{"asset_id": r.asset_id, "asset_name": r.asset_name, "control": r.control_id,
                       "status": r.status, "reason": r.reason, "evaluated_at": r.evaluated_at}
                      for r in page.items],
            "next_cursor": page.next_cursor}


@blp.route("/policy/exceptions", methods=["POST"])
@token_required(Role.reviewer, write=True)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.ExceptionRequest, as_kwargs=False)
@blp.response(201, schemas.ExceptionOut)
@document_errors(blp, (400, 401, 403, 404, 413, 422))
def grant_exception(body: dict[str, Any]) -> tuple[dict[str, Any] | None, int]:
    """Let one asset fail one control until `expires_at` (at most a year away): its result reads
    `excepted` instead of `fail` until then. Audited (`exception_grant`). 422 names the field:
    a control that does not apply to the asset, a blank reason, an expiry in the past or more
    than a year away; 404 for an asset that does not exist or is in the trash."""
    exception = policy_exceptions.grant(
        db.session, api_actor(), body["asset_id"], body["control"], reason=body["reason"],
        expires_at=body["expires_at"])
    return _exception(exception), 201
