"""/api/v1/assets: list, create, read, patch, delete, restore, history."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request, url_for

from webapp.api import proposal_schemas, schemas, serialize
from webapp.api import proposals as api_proposals
from webapp.api.auth import SECURITY, api_actor, token_required
from webapp.api.common import audit_page, document_errors, event_cursor, json_response
from webapp.api.errors import PreconditionFailed, PreconditionRequired
from webapp.api.parsing import ApiBlueprint as Blueprint
from webapp.extensions import db
from webapp.models import Asset, Proposal, Role
from webapp.services import asset_history, asset_search, proposals, settings
from webapp.services import assets as asset_service
from webapp.services.errors import StaleVersion

blp = Blueprint("api_assets", __name__, url_prefix="/api/v1/assets",
                description="Database assets. Changes are audited with the token's user as actor.")
ERRORS = (400, 401, 403, 404, 409, 422)


def _document_errors(codes: tuple[int, ...]):  # type: ignore[no-untyped-def]
    return document_errors(blp, codes)


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


@blp.route("", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.AssetListArgs, location="query", as_kwargs=False)
@blp.response(200, schemas.AssetPage)
@_document_errors((401, 403, 422))
def list_assets(args: dict[str, Any]) -> dict[str, Any]:
    """List assets, filtered and sorted, one keyset page at a time."""
    query = asset_search.parse_query(
        {k: ("true" if v is True else "false" if v is False else v) for k, v in args.items()}
    )
    page = asset_search.list_assets(db.session, query, with_total=False, fields=serialize.LISTED_FIELDS)
    cutoff = settings.stale_cutoff(db.session)
    body = {"items": [serialize.asset(a, cutoff) for a in page.items], "next_cursor": page.next_cursor}
    # already in the AssetPage shape (schemathesis checks it): skip a second, slow marshmallow
    # dump; orjson writes it (timestamps through `jsonable`, as isoformat writes them)
    return json_response(body)


@blp.route("", methods=["POST"])
@token_required(Role.analyst, write=True)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.AssetWrite, as_kwargs=False)
@blp.response(201, schemas.Asset)
@_document_errors((401, 403, 413, 422))
def create_asset(data: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Create an asset. Answers 201 with its Location."""
    asset = asset_service.create(db.session, api_actor(), data)
    headers = {"Location": url_for("api_assets.get_asset", asset_id=asset.id), **_etag(asset.version)}
    return serialize.asset(asset, settings.stale_cutoff(db.session)), 201, headers


@blp.route("/<uuid:asset_id>", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.response(200, schemas.Asset, headers={"ETag": {"description": "The asset's version, quoted", "schema": {"type": "string"}}})
@_document_errors((401, 403, 404))
def get_asset(asset_id: uuid.UUID):  # type: ignore[no-untyped-def]
    """One asset. A merged or deleted asset still answers, with `merged_into` / `deleted_at` set."""
    asset = asset_service.get(db.session, asset_id)
    return serialize.asset(asset, settings.stale_cutoff(db.session)), 200, _etag(asset.version)


def _expected_version(body_version: int | None) -> int:
    header = request.headers.get("If-Match")
    if header and header.strip() == "*":
        # "any version" would defeat optimistic locking: ask for the version that was read
        header = None
    if header:
        value = header.strip()
        value = value[2:] if value.startswith("W/") else value
        value = value.strip('"')
        if not (value.isascii() and value.isdigit()) or len(value) > 18:
            raise PreconditionFailed('If-Match must be the ETag you read, e.g. "3".')
        return int(value)
    if body_version is not None:
        return body_version
    raise PreconditionRequired(
        "Send the version you read, as an If-Match header or `version` in the body."
    )


@blp.route("/<uuid:asset_id>", methods=["PATCH"])
@token_required(Role.analyst, write=True)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.AssetPatch, as_kwargs=False)
@blp.response(200, schemas.Asset)
@blp.alt_response(202, schema=proposal_schemas.Proposal, headers=api_proposals.LOCATION,
                  description="The asset needs approval for changes: the edit was saved as a "
                              "proposal (see /api/v1/proposals); the asset is unchanged.")
@_document_errors((401, 403, 404, 409, 412, 413, 422, 428))
def patch_asset(data: dict[str, Any], asset_id: uuid.UUID):  # type: ignore[no-untyped-def]
    """Change some fields. Needs `If-Match` (or `version`); a stale one gets 412. An asset that
    `approval_required` covers (or would after the edit) is not changed: 202 with the proposal
    and its `Location`, waiting for a reviewer's approval."""
    expected = _expected_version(data.pop("version", None))
    try:
        result = proposals.submit(db.session, api_actor(), asset_id, data, expected_version=expected)
    except StaleVersion as exc:
        raise PreconditionFailed(
            f"The asset changed since you read it (now version {exc.current.version}). "
            "GET it again and reapply your change."
        ) from None
    if isinstance(result, Proposal):
        return api_proposals.accepted(result)
    return serialize.asset(result, settings.stale_cutoff(db.session)), 200, _etag(result.version)


@blp.route("/<uuid:asset_id>", methods=["DELETE"])
@token_required(Role.analyst, write=True)
@blp.doc(security=SECURITY)
@blp.response(204)
@_document_errors((401, 403, 404, 409))
def delete_asset(asset_id: uuid.UUID):  # type: ignore[no-untyped-def]
    """Move an asset to the trash (soft delete)."""
    asset_service.delete(db.session, api_actor(), asset_id)
    return "", 204


@blp.route("/<uuid:asset_id>/restore", methods=["POST"])
@token_required(Role.analyst, write=True)
@blp.doc(security=SECURITY)
@blp.response(200, schemas.Asset)
@_document_errors((401, 403, 404, 409, 422))
def restore_asset(asset_id: uuid.UUID):  # type: ignore[no-untyped-def]
    """Bring an asset back from the trash."""
    asset = asset_service.restore(db.session, api_actor(), asset_id)
    return serialize.asset(asset, settings.stale_cutoff(db.session)), 200, _etag(asset.version)


@blp.route("/<uuid:asset_id>/audit", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.AssetAuditArgs, location="query", as_kwargs=False)
@blp.response(200, schemas.AuditPage)
@_document_errors((401, 403, 404, 422))
def asset_audit(args: dict[str, Any], asset_id: uuid.UUID):  # type: ignore[no-untyped-def]
    """The asset's audit events, newest first."""
    asset = asset_service.get(db.session, asset_id, only=(Asset.deleted_at,))  # that it exists
    before = event_cursor(args.get("cursor"))
    events = asset_history.events(db.session, asset.id, limit=args["limit"] + 1, before_id=before)
    more = len(events) > args["limit"]
    events = events[: args["limit"]]
    return audit_page(events, str(events[-1].id) if more and events else None)
