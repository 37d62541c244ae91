"""Marshmallow schemas of /api/v1/proposals: manual edits waiting for approval (SPEC §5)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from webapp.api.schemas import NO_NUL
from webapp.models import ProposalStatus
from webapp.services.proposals import REASON_MAX

STATUSES = [s.value for s in ProposalStatus]


class Proposal(Schema):
    """A proposed change: a diff against the asset version it was made on."""

    class Meta:
        ordered = True

    id = fields.UUID()
    asset_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(STATUSES))
    base_version = fields.Integer(metadata={"description": "The asset version the change was made on."})
    changes = fields.Dict(metadata={"description": "`{field: [value at base_version, proposed value]}`."})
    stale = fields.Boolean(metadata={"description": "Open, but the asset changed since: approving "
                                                    "is refused (409); rebase or reject it."})
    proposed_by = fields.UUID(allow_none=True)
    proposed_by_label = fields.String()
    created_at = fields.DateTime()
    change_set_id = fields.UUID(allow_none=True, metadata={"description": "The bulk action it came from."})
    decided_by = fields.UUID(allow_none=True)
    decided_by_label = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    reason = fields.String(allow_none=True, metadata={"description": "Why it was rejected."})
    applied_version = fields.Integer(allow_none=True,
                                     metadata={"description": "The asset version its approval made."})


class ProposalList(Schema):
    items = fields.List(fields.Nested(Proposal))


class ProposalListArgs(Schema):
    status = fields.String(load_default="open", validate=validate.OneOf([*STATUSES, "any"]),
                           metadata={"description": "`any` lists every status."})
    asset_id = fields.UUID(metadata={"description": "Only this asset's proposals."})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class RejectBody(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=[validate.Length(min=1, max=REASON_MAX), NO_NUL],
                           metadata={"description": "Why the change is rejected (required)."})
