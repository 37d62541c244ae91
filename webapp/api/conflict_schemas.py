"""Marshmallow schemas of /api/v1/conflicts: the review queue and its resolutions."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from webapp.api.schemas import NO_NUL
from webapp.models import ConflictKind, ConflictStatus
from webapp.services.conflicts import ACTIONS, CHOICES, LIMIT_MAX

KINDS = [k.value for k in ConflictKind]
STATUSES = [s.value for s in ConflictStatus]


class Resolution(Schema):
    class Meta:
        ordered = True

    action = fields.String(validate=validate.OneOf(ACTIONS))
    fields = fields.Dict(keys=fields.String(), values=fields.String(validate=validate.OneOf(CHOICES)),
                         metadata={"description": "The choice made for each differing field."})


class Conflict(Schema):
    """A review item (SPEC §3 "Conflict")."""

    class Meta:
        ordered = True

    id = fields.UUID()
    kind = fields.String(validate=validate.OneOf(KINDS))
    status = fields.String(validate=validate.OneOf(STATUSES))
    import_run_id = fields.UUID(allow_none=True)
    import_number = fields.Integer(allow_none=True, metadata={"description": "Shown as `import #N`."})
    record_key = fields.String(allow_none=True, metadata={"description": "The input record's key (`csv:4`, `aws_rds:…`)."})
    candidate_id = fields.UUID(allow_none=True, metadata={"description": "The existing asset it may be."})
    duplicate_id = fields.UUID(
        allow_none=True,
        metadata={"description": "A possible duplicate between two existing assets: the other one "
                                 "(then `incoming` is empty)."})
    confidence = fields.Float()
    reasons = fields.List(fields.String())
    incoming = fields.Dict(metadata={"description": "The normalised incoming record (asset fields)."})
    fields_ = fields.Dict(data_key="fields", attribute="fields",
                          metadata={"description": "A field conflict's `{field: [current, incoming]}`."})
    resolution = fields.Nested(Resolution, allow_none=True)
    result_asset_id = fields.UUID(
        allow_none=True,
        metadata={"description": "The asset it ended in: the merged one, or the one created."})
    resolved_by = fields.UUID(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class ConflictPage(Schema):
    items = fields.List(fields.Nested(Conflict))
    next_cursor = fields.String(allow_none=True)


class ConflictListArgs(Schema):
    status = fields.String(load_default="open", validate=validate.OneOf([*STATUSES, "any"]),
                           metadata={"description": "`any` lists every status."})
    kind = fields.String(validate=validate.OneOf(KINDS))
    import_id = fields.UUID(metadata={"description": "Only the items of this import run."})
    min_confidence = fields.Float(validate=validate.Range(0, 1), allow_nan=False,
                                  metadata={"description": "0–1."})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, LIMIT_MAX))
    cursor = fields.String(validate=[validate.Length(max=200), NO_NUL],
                           metadata={"description": "next_cursor of the previous page."})


class ResolveBody(Schema):
    """How to resolve: an action and, for a merge, a choice per differing field (omitted fields
    take the default: incoming only where the current value is empty; for a field conflict,
    current)."""

    class Meta:
        unknown = RAISE
        ordered = True

    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    fields = fields.Dict(
        keys=fields.String(validate=[validate.Length(min=1, max=64), NO_NUL]),
        values=fields.String(validate=validate.OneOf(CHOICES)),
        load_default=None,
        metadata={"description": "`{field: \"current\" | \"incoming\"}`."},
    )
