"""Marshmallow schemas: they validate API requests and generate the OpenAPI document."""

from __future__ import annotations

import enum
from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from webapp import policy as policy_controls
from webapp.models import (
    AssetStatus,
    AuditAction,
    CloudProvider,
    Criticality,
    DataClassification,
    Engine,
    Environment,
    PolicyStatus,
    asset_fields,
)
from webapp.services.asset_search import SORTS

NO_NUL = validate.Regexp(r"^[^\x00]*$", error="Text may not contain NUL characters.")


def _values(enum_cls) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.value for m in enum_cls]


def _text(max_len: int, **kwargs) -> fields.String:  # type: ignore[no-untyped-def]
    return fields.String(validate=[validate.Length(max=max_len), NO_NUL], **kwargs)


def _choice(enum_cls, **kwargs) -> fields.String:  # type: ignore[no-untyped-def]
    return fields.String(validate=validate.OneOf(_values(enum_cls)), **kwargs)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE
        ordered = True


def _write_field(spec: asset_fields.FieldSpec) -> fields.Field:
    """The API's input field for one catalogue field (limits and values from the catalogue)."""
    nullable = not spec.required and spec.default is None
    if spec.kind == "text":
        low = 1 if spec.required else None
        kwargs: dict[str, Any] = {"required": spec.required}
        if nullable:
            kwargs["allow_none"] = True
        if spec.secret:
            kwargs.update(load_only=True, metadata={"description": "Write-only; stored encrypted and never returned."})
        return fields.String(validate=[validate.Length(min=low, max=spec.max_length), NO_NUL], **kwargs)
    if spec.kind == "choice":
        return _choice(spec.enum, required=spec.required, **({"allow_none": True} if nullable else {}))
    if spec.kind == "integer":
        return fields.Integer(allow_none=True, strict=True,
                              validate=validate.Range(spec.minimum, spec.maximum))
    if spec.kind == "boolean":
        return fields.Boolean(allow_none=True, truthy={True}, falsy={False})
    if spec.kind == "timestamp":
        return fields.AwareDateTime(allow_none=True, format="iso")
    if spec.kind == "mapping":
        return fields.Dict(keys=fields.String(validate=NO_NUL), metadata={"description": "Free-form JSON object."})
    if spec.kind == "list":
        return fields.List(_text(spec.max_length), validate=validate.Length(max=spec.max_items))
    if spec.kind == "tags":
        return fields.List(fields.String(validate=[validate.Length(min=1, max=spec.max_length), NO_NUL]),
                           validate=validate.Length(max=spec.max_items))
    raise ValueError(f"no API input for a {spec.kind} field")


# Fields a client may send when creating an asset: every writable field of the catalogue.
AssetWrite = type("AssetWrite", (StrictSchema,), {
    "__doc__": "Fields a client may send when creating an asset.",
    **{f.name: _write_field(f) for f in asset_fields.CATALOGUE if f.writable},
})


class AssetPatch(StrictSchema):
    """A partial update. Send the version you read (or an If-Match header)."""

    version = fields.Integer(strict=True, validate=validate.Range(min=1),
                             metadata={"description": "The version you read; stale -> 412."})


# the same fields, every one optional (fields of their own: marking AssetWrite's shared field
# objects optional would make `name` and `engine` optional on create too)
for _spec in asset_fields.CATALOGUE:
    if _spec.writable:
        _field = _write_field(_spec)
        _field.required = False
        AssetPatch._declared_fields[_spec.name] = _field


class Asset(Schema):
    """An asset as the API returns it (SPEC §3 field names)."""

    class Meta:
        ordered = True

    id = fields.UUID()
    name = fields.String()
    engine = fields.String(validate=validate.OneOf(_values(Engine)))
    engine_version = fields.String(allow_none=True)
    host = fields.String(allow_none=True)
    port = fields.Integer(allow_none=True)
    database_name = fields.String(allow_none=True)
    aliases = fields.List(fields.String())
    cloud_provider = fields.String(allow_none=True, validate=validate.OneOf(_values(CloudProvider)))
    region = fields.String(allow_none=True)
    cloud_resource_id = fields.String(allow_none=True)
    environment = fields.String(validate=validate.OneOf(_values(Environment)))
    status = fields.String(validate=validate.OneOf(_values(AssetStatus)))
    owner = fields.String(allow_none=True)
    criticality = fields.String(allow_none=True, validate=validate.OneOf(_values(Criticality)))
    data_classification = fields.String(
        allow_none=True, validate=validate.OneOf(_values(DataClassification))
    )
    encrypted_at_rest = fields.Boolean(allow_none=True)
    tls_required = fields.Boolean(allow_none=True)
    publicly_accessible = fields.Boolean(allow_none=True)
    backup_retention_days = fields.Integer(allow_none=True)
    last_backup_at = fields.DateTime(allow_none=True)
    deletion_protection = fields.Boolean(allow_none=True)
    has_connection_string = fields.Boolean()
    metadata = fields.Dict()
    notes = fields.String(allow_none=True)
    tags = fields.List(fields.String())
    source = fields.String()
    confidence = fields.Float(allow_none=True)
    first_seen_at = fields.DateTime(allow_none=True)
    last_seen_at = fields.DateTime(allow_none=True)
    last_import_id = fields.UUID(allow_none=True)
    locked_fields = fields.List(fields.String())
    stale = fields.Boolean()
    seen = fields.String(metadata={"enum": ["unverified", "stale", "fresh"], "description": (
        "unverified: never seen by discovery; stale: missed by covering scans for "
        "stale_after_days; fresh: neither (SPEC §6).")})
    missed_since = fields.DateTime(allow_none=True, metadata={"description": (
        "When a scan that covered the asset (its host and port, or its cloud account and region) "
        "first missed it after its last sighting; null once seen again.")})
    version = fields.Integer()
    created_at = fields.DateTime()
    created_by = fields.UUID(allow_none=True)
    updated_at = fields.DateTime()
    updated_by = fields.UUID(allow_none=True)
    deleted_at = fields.DateTime(allow_none=True)
    deleted_by = fields.UUID(allow_none=True)
    merged_into = fields.UUID(allow_none=True)


class AssetPage(Schema):
    items = fields.List(fields.Nested(Asset))
    next_cursor = fields.String(allow_none=True)


def _any_of(enum_cls: type[enum.Enum], description: str = "Repeat for any of several values "
            "(`engine=mysql&engine=postgresql`).") -> fields.List:
    """A list filter on an enum field: repeat the argument for any of several values."""
    values = [m.value for m in enum_cls]
    # the check on the list, not on each item, so a bad value's error names the parameter
    return fields.List(fields.String(metadata={"enum": values}),
                       validate=validate.ContainsOnly(values), metadata={"description": description})


class AssetListArgs(Schema):
    q = _text(200, metadata={"description": "Words that must all appear in name, host, aliases, database name, owner or tags."})
    engine = _any_of(Engine)
    environment = _any_of(Environment)
    status = _any_of(AssetStatus)
    criticality = _any_of(Criticality)
    data_classification = _any_of(DataClassification)
    owner = _text(200, metadata={"description": "Owners starting with this text, any case."})
    tag = _text(64)
    stale = fields.Boolean(metadata={"description": "true: only stale assets (as seen=stale); false: all others."})
    seen = fields.String(validate=validate.OneOf(["unverified", "stale", "fresh"]), metadata={
        "description": "unverified: only assets no discovery import has ever reported; stale: active assets "
                       "that scans covering their host and port (or cloud account and region) have "
                       "missed for `stale_after_days`; fresh: seen by discovery and not stale (SPEC §6)."})
    unverified = fields.Boolean(metadata={
        "description": "true: only assets no discovery import has ever reported (known only from "
                       "manual entry or the API); false: only those one has."})
    unowned = fields.Boolean(metadata={
        "description": "true: only assets with no owner set; false: only those with one."})
    policy_failing = fields.Boolean(metadata={
        "description": "true: only assets failing at least one policy control (stored results, "
                       "SPEC §12); false: only those failing none."})
    policy = fields.String(
        validate=validate.OneOf(list(policy_controls.CONTROLS), error="Choose a policy control by its id."),
        metadata={"description": "A policy control's id (GET /api/v1/policy/controls): only "
                                 "assets whose result for it has one of `policy_status` (fail "
                                 "when none is given)."})
    policy_status = _any_of(PolicyStatus, description=(
        "Policy results of any of these statuses: of the `policy` control, or of any control "
        "when none is given. Repeat for several (`policy_status=fail&policy_status=unknown`)."))
    include_deleted = fields.Boolean(load_default=False)
    sort = fields.String(
        load_default="name",
        validate=validate.OneOf([*SORTS, *(f"-{s}" for s in SORTS)]),
        metadata={"description": "A field, or -field for descending."},
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.String(validate=[validate.Length(max=500), NO_NUL],
                           metadata={"description": "next_cursor of the previous page."})


class AuditEvent(Schema):
    class Meta:
        ordered = True

    id = fields.Integer()
    occurred_at = fields.DateTime()
    actor_id = fields.UUID(allow_none=True)
    actor_label = fields.String()
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    action = fields.String(validate=validate.OneOf(_values(AuditAction)))
    entity_type = fields.String()
    entity_id = fields.String(allow_none=True)
    changes = fields.Dict()
    message = fields.String(allow_none=True)
    prev_hash = fields.String()
    hash = fields.String()


class AuditPage(Schema):
    items = fields.List(fields.Nested(AuditEvent))
    next_cursor = fields.String(allow_none=True)


class AuditListArgs(Schema):
    actor = _text(300)
    action = _choice(AuditAction)
    entity_type = _text(50)
    entity_id = _text(64)
    since = fields.Date(metadata={"description": "YYYY-MM-DD, inclusive."})
    until = fields.Date(metadata={"description": "YYYY-MM-DD, inclusive."})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.String(validate=[validate.Length(max=40), NO_NUL])


class AssetAuditArgs(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.String(validate=[validate.Length(max=40), NO_NUL])


class ProblemField(Schema):
    field = fields.String()
    message = fields.String()


class Problem(Schema):
    """RFC 9457 problem details."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.List(fields.Nested(ProblemField))


class Health(Schema):
    status = fields.String()
    checks = fields.Dict(keys=fields.String(), values=fields.String())
