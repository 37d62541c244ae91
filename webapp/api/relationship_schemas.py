"""Marshmallow schemas of /api/v1/relationships and /api/v1/assets/{id}/graph.

`api/relationships.relationship_dict` and the service's `graph_dict` are plain JSON (ids and
times as strings), so the output schemas describe those shapes and dump
them unchanged; times are strings documented as `date-time`. Request schemas check types and
the closed choices (kind, origin, direction) so the OpenAPI document lists them; the rules of a
link (no self-link, live assets, no duplicate, description length) and the graph's bounds stay
in the service.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from webapp.api.schemas import NO_NUL
from webapp.models import (
    AssetStatus,
    Criticality,
    Engine,
    Environment,
    RelationshipKind,
)
from webapp.services.graph import DEFAULT_DEPTH, DIRECTIONS, MAX_DEPTH, NODE_LIMIT
from webapp.services.relationships import DESCRIPTION_MAX

KINDS = [k.value for k in RelationshipKind]
ORIGINS = ["manual", "discovered"]
SIDES = ["self", "up", "down", "both"]
# the service's own wording for a bad kind ("Choose one of: depends_on, …")
KIND_CHOICE = validate.OneOf(KINDS, error="Choose one of: {choices}.")


def _datetime(**kwargs) -> fields.String:  # type: ignore[no-untyped-def]
    return fields.String(metadata={"format": "date-time", **kwargs.pop("metadata", {})}, **kwargs)


class AssetRef(Schema):
    """One end of a relationship."""

    class Meta:
        ordered = True

    id = fields.UUID()
    name = fields.String()


class GraphEdge(Schema):
    """A relationship as the graph's edges carry it: `source → target` of one kind (the rest
    is at `/api/v1/relationships/{id}`)."""

    class Meta:
        ordered = True

    id = fields.UUID()
    source_id = fields.UUID()
    target_id = fields.UUID()
    kind = fields.String(validate=validate.OneOf(KINDS))
    description = fields.String(allow_none=True)


class Link(GraphEdge):
    """A relationship: `source → target` of one kind, who drew it or which import found it."""

    created_at = _datetime()
    created_by = fields.UUID(allow_none=True,
                             metadata={"description": "The user who drew it (null: an import)."})
    import_run_id = fields.UUID(
        allow_none=True,
        metadata={"description": "The import whose file stated it (null: drawn by a person)."})


class Relationship(Link):
    """A relationship with the names of its two ends."""

    source = fields.Nested(AssetRef)
    target = fields.Nested(AssetRef)


class RelationshipPage(Schema):
    items = fields.List(fields.Nested(Relationship))
    next_cursor = fields.String(allow_none=True)


class RelationshipListArgs(Schema):
    kind = fields.String(validate=KIND_CHOICE)
    asset_id = fields.UUID(metadata={"description": "Relationships with this asset at either end."})
    source_id = fields.UUID()
    target_id = fields.UUID()
    q = fields.String(validate=[validate.Length(max=200), NO_NUL],
                      metadata={"description": "Text in either end's name."})
    origin = fields.String(
        validate=validate.OneOf(ORIGINS),
        metadata={"description": "`manual`: drawn by a person; `discovered`: stated by an import."})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.String(validate=[validate.Length(max=500), NO_NUL],
                           metadata={"description": "next_cursor of the previous page."})


class RelationshipWrite(Schema):
    """A new link: `source_id` `kind` `target_id`, e.g. app-db depends_on orders-db."""

    class Meta:
        unknown = RAISE
        ordered = True

    source_id = fields.UUID(required=True)
    target_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=KIND_CHOICE)
    description = fields.String(
        allow_none=True, load_default=None,
        metadata={"description": f"Free text, trimmed; at most {DESCRIPTION_MAX} characters."})


class GraphArgs(Schema):
    direction = fields.String(
        load_default="both", validate=validate.OneOf(DIRECTIONS),
        metadata={"description": "`down`: what depends on the asset (what breaks if it goes "
                                 "down); `up`: what it depends on; `both`."})
    # the service checks depth and limit (and caps depth); the bounds here only document them
    depth = fields.Integer(
        load_default=DEFAULT_DEPTH,
        metadata={"minimum": 1, "description": f"Levels to walk; more than {MAX_DEPTH} is "
                                               "capped (then `truncated`)."})
    limit = fields.Integer(
        load_default=NODE_LIMIT,
        metadata={"minimum": 1, "maximum": NODE_LIMIT,
                  "description": "Most nodes besides the asset; past it `truncated` is true."})


class GraphNode(Schema):
    class Meta:
        ordered = True

    id = fields.UUID()
    name = fields.String()
    engine = fields.String(validate=validate.OneOf([e.value for e in Engine]))
    environment = fields.String(validate=validate.OneOf([e.value for e in Environment]))
    status = fields.String(validate=validate.OneOf([s.value for s in AssetStatus]))
    criticality = fields.String(allow_none=True,
                                validate=validate.OneOf([c.value for c in Criticality]))
    host = fields.String(allow_none=True)
    depth = fields.Integer(metadata={"description": "Steps from the asset (0: the asset)."})
    side = fields.String(
        validate=validate.OneOf(SIDES),
        metadata={"description": "`self` (the asset), `up` (it depends on this), `down` (this "
                                 "depends on it) or `both` (a cycle)."})


class Graph(Schema):
    class Meta:
        ordered = True

    root = fields.UUID()
    direction = fields.String(validate=validate.OneOf(DIRECTIONS))
    depth = fields.Integer(metadata={"description": "The depth walked (after any cap)."})
    truncated = fields.Boolean(
        metadata={"description": "More lay beyond the depth cap or the node limit."})
    nodes = fields.List(fields.Nested(GraphNode),
                        metadata={"description": "The asset first, then by depth and name."})
    edges = fields.List(fields.Nested(GraphEdge),
                        metadata={"description": "Every relationship among the nodes."})
