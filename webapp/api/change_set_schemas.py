"""Schemas of the bulk action and change set endpoints (SPEC §7). The fields a bulk action may
set, their values and limits come from the field catalogue, like the asset schemas'."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from webapp import policy as policy_controls
from webapp.api.schemas import NO_NUL, AssetListArgs, StrictSchema, _text, _write_field
from webapp.models import (
    AssetStatus,
    ChangeSetKind,
    ChangeSetStatus,
    Criticality,
    DataClassification,
    Engine,
    Environment,
    PolicyStatus,
    asset_fields,
)
from webapp.services.change_sets import IDS_MAX, SETTABLE


class OneOrMany(fields.Field):
    """A list filter on an enum field: one value, or a list of them (any of several)."""

    def __init__(self, values: list[str], **kwargs: Any) -> None:
        self.values = values
        one = {"type": "string", "enum": values}
        kwargs.setdefault("metadata", {})["oneOf"] = [one, {"type": "array", "items": one}]
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) and v in self.values for v in items):
            raise ValidationError(f"Choose one of: {', '.join(self.values)} (or a list of them).")
        return items


def _as_listed(name: str) -> dict[str, Any]:
    """The description `GET /api/v1/assets` gives the same filter."""
    return {"description": AssetListArgs._declared_fields[name].metadata["description"]}


def _any_of(enum_cls: Any) -> OneOrMany:
    return OneOrMany([m.value for m in enum_cls])


class BulkFilter(StrictSchema):
    """The asset list's filters, as `GET /api/v1/assets` takes them."""

    q = _text(200, metadata={"description": "Words that must all appear in name, host, aliases, database name, owner or tags."})
    engine = _any_of(Engine)
    environment = _any_of(Environment)
    status = _any_of(AssetStatus)
    criticality = _any_of(Criticality)
    data_classification = _any_of(DataClassification)
    owner = _text(200, metadata={"description": "Owners starting with this text, any case."})
    tag = _text(64)
    stale = fields.Boolean(truthy={True}, falsy={False})
    seen = fields.String(validate=validate.OneOf(["unverified", "stale", "fresh"]), metadata=_as_listed("seen"))
    unverified = fields.Boolean(truthy={True}, falsy={False},
                                metadata=_as_listed("unverified"))
    unowned = fields.Boolean(truthy={True}, falsy={False},
                             metadata=_as_listed("unowned"))
    policy_failing = fields.Boolean(truthy={True}, falsy={False},
                                    metadata=_as_listed("policy_failing"))
    policy = fields.String(
        validate=validate.OneOf(list(policy_controls.CONTROLS), error="Choose a policy control by its id."),
        metadata=_as_listed("policy"))
    policy_status = _any_of(PolicyStatus)
    include_deleted = fields.Boolean(truthy={True}, falsy={False})


# the fields a bulk action may set, each as the asset schemas take it
BulkSet = type("BulkSet", (StrictSchema,), {
    "__doc__": "Fields to set on every selected asset (the catalogue's bulk-editable fields).",
    **{name: _write_field(asset_fields.spec(name)) for name in SETTABLE},
})

_TAG = fields.String(validate=[validate.Length(min=1, max=asset_fields.spec("tags").max_length), NO_NUL])


class BulkRequest(StrictSchema):
    """A bulk action: which assets (`ids` or `filter`, one of them), and what to do to them."""

    filter = fields.Nested(BulkFilter, metadata={"description": "Every asset the list filter matches."})
    ids = fields.List(fields.UUID(), validate=validate.Length(min=1, max=IDS_MAX),
                      metadata={"description": f"Asset ids (at most {IDS_MAX:,})."})
    set = fields.Nested(BulkSet)
    add_tags = fields.List(_TAG, validate=validate.Length(max=asset_fields.spec("tags").max_items))
    remove_tags = fields.List(_TAG, validate=validate.Length(max=asset_fields.spec("tags").max_items))
    delete = fields.Boolean(truthy={True}, falsy={False}, load_default=False,
                            metadata={"description": "Move the assets to the trash (alone)."})
    dry_run = fields.Boolean(truthy={True}, falsy={False}, load_default=False,
                             metadata={"description": "Answer 200 with the preview; write nothing."})

    @validates_schema
    def _one_selection(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("filter" in data) == ("ids" in data):
            raise ValidationError("Send either `ids` or `filter`.", "ids")


class SampleChange(Schema):
    asset_id = fields.UUID()
    name = fields.String()
    changes = fields.Dict(keys=fields.String(), values=fields.List(fields.Raw(allow_none=True)),
                          metadata={"description": "{field: [before, after]}; `in_trash` for a delete."})


class BulkPreview(Schema):
    """What a bulk action would do, measured now; nothing was written."""

    class Meta:
        ordered = True

    dry_run = fields.Boolean()
    matched = fields.Integer(metadata={"description": "Assets selected."})
    changes = fields.Integer(metadata={"description": "Assets that would change."})
    unchanged = fields.Integer(metadata={"description": "Assets already as asked."})
    locked = fields.Integer(metadata={"description": "Assets held by a pending proposal."})
    refused = fields.Integer(metadata={"description": "Assets in the trash."})
    sample = fields.List(fields.Nested(SampleChange))


class Progress(Schema):
    processed = fields.Integer()
    total = fields.Integer()
    percent = fields.Integer()


class ReportedAsset(Schema):
    asset_id = fields.UUID()
    name = fields.String(allow_none=True)
    reason = fields.String()


class ChangeSet(Schema):
    """A change set: a bulk action or its undo, applied as one and undone as one."""

    class Meta:
        ordered = True

    id = fields.UUID()
    number = fields.Integer(allow_none=True, metadata={"description": "Shown as `change set #N`."})
    kind = fields.String(validate=validate.OneOf([k.value for k in ChangeSetKind]))
    status = fields.String(validate=validate.OneOf([s.value for s in ChangeSetStatus]))
    description = fields.String()
    actor_id = fields.UUID(allow_none=True)
    actor_label = fields.String()
    selection = fields.Dict(metadata={"description": "`{\"ids\": [...]}`, `{\"filter\": {...}}` or, for an undo, `{\"change_set\": id}`."})
    params = fields.Dict(metadata={"description": "The action: `set`, `add_tags`, `remove_tags`, `delete`; `undo` (a number)."})
    matched = fields.Integer()
    changed = fields.Integer()
    unchanged = fields.Integer()
    locked = fields.Integer()
    refused = fields.Integer()
    failed = fields.Integer()
    progress = fields.Nested(Progress)
    reported = fields.List(fields.Nested(ReportedAsset),
                           metadata={"description": "The first 1,000 refused, locked or failed assets, with why."})
    undo_of = fields.UUID(allow_none=True)
    undone_by = fields.UUID(allow_none=True)
    error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
