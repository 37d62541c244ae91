"""/api/v1/relationships and /api/v1/assets/{id}/graph: links between assets and the dependency
graph they form. Everyone with a token reads; analysts and up link and unlink with a read-write
token (SPEC §4). Each link and unlink is audited on both assets by the service.

Graph directions follow dependency, not arrows (`webapp.models.relationship`): `down` is what
depends on the asset (what breaks if it goes down), `up` is what it depends on.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, url_for

from webapp.api import relationship_schemas as schemas
from webapp.api.auth import SECURITY, api_actor, token_required
from webapp.api.common import document_errors
from webapp.api.parsing import ApiBlueprint
from webapp.extensions import db
from webapp.models import Asset, AssetRelationship, RelationshipKind, Role
from webapp.services import assets, relationships

# The graph lives under /assets/{id}, so the blueprint spans /api/v1 (as imports does).
blp = ApiBlueprint(
    "api_relationships", __name__, url_prefix="/api/v1",
    description="Relationships between assets (`source kind target`) and the dependency graph "
                "around an asset. Links and unlinks are audited on both assets.",
)

LOCATION = {"Location": {"description": "The relationship's URL.", "schema": {"type": "string"}}}


def relationship_dict(rel: AssetRelationship) -> dict[str, Any]:
    """A relationship as the API shows it (ids and times as strings)."""
    return {
        "id": str(rel.id), "source_id": str(rel.source_id), "target_id": str(rel.target_id),
        "kind": RelationshipKind(rel.kind).value, "description": rel.description,
        "created_at": rel.created_at.isoformat(),
        "created_by": str(rel.created_by) if rel.created_by else None,
        "import_run_id": str(rel.import_run_id) if rel.import_run_id else None,
    }


def _item(rel: AssetRelationship, source: Asset, target: Asset) -> dict[str, Any]:
    return {**relationship_dict(rel),
            "source": {"id": str(source.id), "name": source.name},
            "target": {"id": str(target.id), "name": target.name}}


def _one(rel: AssetRelationship) -> dict[str, Any]:
    # both ends exist (ON DELETE CASCADE); either may be in the trash
    return _item(rel, assets.get(db.session, rel.source_id), assets.get(db.session, rel.target_id))


@blp.route("/relationships", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.RelationshipListArgs, location="query", as_kwargs=False)
@blp.response(200, schemas.RelationshipPage)
@document_errors(blp, (401, 403, 422))
def list_relationships(args: dict[str, Any]) -> dict[str, Any]:
    """Relationships between live assets, newest first, one keyset page at a time."""
    page = relationships.listing(
        db.session,
        kind=RelationshipKind(args["kind"]) if args.get("kind") else None,
        asset_id=args.get("asset_id"), source_id=args.get("source_id"),
        target_id=args.get("target_id"), q=args.get("q"), origin=args.get("origin"),
        limit=args["limit"], after=args.get("cursor"),
    )
    return {"items": [_item(*row) for row in page.items], "next_cursor": page.next_cursor}


@blp.route("/relationships", methods=["POST"])
@token_required(Role.analyst, write=True)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.RelationshipWrite, as_kwargs=False)
@blp.response(201, schemas.Relationship, headers=LOCATION)
@document_errors(blp, (401, 403, 409, 413, 422))
def create_relationship(body: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Link two live assets: `source_id` `kind` `target_id` (e.g. app-db depends_on orders-db).

    201 with its Location. 422 for a self-link, an unknown or trashed asset or a bad field;
    409 when the same (source, target, kind) exists already. A `depends_on` that closes a cycle
    is allowed.
    """
    rel = relationships.create(db.session, api_actor(), source_id=body["source_id"],
                               target_id=body["target_id"], kind=body["kind"],
                               description=body["description"])
    location = url_for("api_relationships.get_relationship", relationship_id=rel.id)
    return _one(rel), 201, {"Location": location}


@blp.route("/relationships/<uuid:relationship_id>", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.response(200, schemas.Relationship)
@document_errors(blp, (401, 403, 404))
def get_relationship(relationship_id: uuid.UUID) -> dict[str, Any]:
    """One relationship."""
    return _one(relationships.get(db.session, relationship_id))


@blp.route("/relationships/<uuid:relationship_id>", methods=["DELETE"])
@token_required(Role.analyst, write=True)
@blp.doc(security=SECURITY)
@blp.response(204)
@document_errors(blp, (401, 403, 404))
def delete_relationship(relationship_id: uuid.UUID):  # type: ignore[no-untyped-def]
    """Remove a relationship (audited as `unlink` on both assets)."""
    relationships.delete(db.session, api_actor(), relationship_id)
    return "", 204


@blp.route("/assets/<uuid:asset_id>/graph", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.GraphArgs, location="query", as_kwargs=False)
@blp.response(200, schemas.Graph)
@document_errors(blp, (401, 403, 404, 422))
def asset_graph(args: dict[str, Any], asset_id: uuid.UUID) -> Response:
    """The dependency graph around an asset: nodes (the asset first, each with its `depth` and
    `side`) and every relationship among them.

    `down`: what depends on the asset, i.e. what breaks if it goes down; `up`: what it depends
    on; `both`. `depth` defaults to 2 and is capped at 10; `truncated` says more lay beyond the
    cap or the node `limit`.
    """
    # already JSON in the documented shape (built by PostgreSQL): answered as it is, not
    # dumped a second time through the schema (500 nodes cost ~50 ms there; see `make bench`)
    body = relationships.graph_json(db.session, asset_id, direction=args["direction"],
                                    depth=args["depth"], limit=args["limit"])
    return Response(body, mimetype="application/json")
