"""Schemas of the policy API (SPEC §12): controls with their parameters, references and counts,
an asset's results, stored results one page at a time, and exceptions."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from webapp import policy
from webapp.api.schemas import NO_NUL, StrictSchema
from webapp.models import PolicyStatus
from webapp.services.policy_exceptions import REASON_MAX

STATUSES = [s.value for s in PolicyStatus]  # pass fail unknown excepted
SEVERITIES = [s.value for s in policy.Severity]


def control_choice(**kwargs) -> fields.String:  # type: ignore[no-untyped-def]
    """A registered control's id; anything else is a 422 naming the field."""
    return fields.String(validate=validate.OneOf(list(policy.CONTROLS),
                                                 error="Choose a policy control by its id."),
                         **kwargs)


class Counts(Schema):
    """Results by status."""

    class Meta:
        ordered = True

    pass_ = fields.Integer(data_key="pass", attribute="pass")
    fail = fields.Integer()
    unknown = fields.Integer()
    excepted = fields.Integer()


COMPLIANCE = {"description": "pass ÷ (pass + fail), from 0 to 1; null when neither (unknown and "
                             "excepted results neither help nor hurt it)."}
REFERENCES = {"description": "{framework id: [the ids this control satisfies there]}, e.g. "
                             '{"soc2": ["CC6.1"], "aws_fsbp": ["RDS.3"]}.'}


class Parameter(Schema):
    class Meta:
        ordered = True

    name = fields.String()
    type = fields.String(validate=validate.OneOf(["integer", "boolean"]))
    value = fields.Raw(metadata={"description": "The value in force: an admin's setting "
                                                "(Settings, audited) or else the default."})
    default = fields.Raw()
    minimum = fields.Integer(allow_none=True)
    maximum = fields.Integer(allow_none=True)
    unit = fields.String()
    allowed = fields.String(metadata={"description": "The allowed range as text: "
                                                     "\"1–3650 days\", \"true or false\"."})
    help = fields.String()


class Control(Schema):
    class Meta:
        ordered = True

    id = fields.String()
    title = fields.String()
    description = fields.String()
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    family = fields.String()
    parameters = fields.List(fields.Nested(Parameter))
    references = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                             metadata=REFERENCES)
    counts = fields.Nested(Counts)
    compliance = fields.Float(allow_none=True, metadata=COMPLIANCE)


class Framework(Schema):
    class Meta:
        ordered = True

    id = fields.String()
    title = fields.String()
    description = fields.String()
    url = fields.String()
    controls = fields.List(fields.String(), metadata={"description": "The ids of the controls "
                                                                     "that cite it."})
    counts = fields.Nested(Counts, metadata={"description": "Its controls' results added up."})
    compliance = fields.Float(allow_none=True, metadata=COMPLIANCE)


class Controls(Schema):
    frameworks = fields.List(fields.Nested(Framework))
    controls = fields.List(fields.Nested(Control))


class ExceptionOut(Schema):
    """An exception: the asset may fail the control until `expires_at`."""

    class Meta:
        ordered = True

    id = fields.UUID()
    asset_id = fields.UUID()
    control = fields.String()
    reason = fields.String()
    expires_at = fields.DateTime()
    granted_by = fields.UUID(allow_none=True)
    granted_by_label = fields.String()
    granted_at = fields.DateTime()


class AssetControl(Schema):
    class Meta:
        ordered = True

    control = fields.String()
    title = fields.String()
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    status = fields.String(allow_none=True, validate=validate.OneOf(STATUSES),
                           metadata={"description": "null until the asset is first evaluated."})
    reason = fields.String(allow_none=True)
    evaluated_at = fields.DateTime(allow_none=True)
    references = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                             metadata=REFERENCES)
    exception = fields.Nested(ExceptionOut, allow_none=True,
                              metadata={"description": "The live exception, if any."})


class AssetPolicy(Schema):
    class Meta:
        ordered = True

    asset_id = fields.UUID()
    counts = fields.Nested(Counts)
    applicable = fields.List(fields.Nested(AssetControl), metadata={
        "description": "Failures first, then unknown, excepted and passed; by severity within."})
    not_applicable = fields.List(fields.String(), metadata={
        "description": "The ids of the controls that do not apply to this asset."})


class ResultArgs(Schema):
    control = control_choice()
    status = fields.String(validate=validate.OneOf(STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.String(validate=[validate.Length(max=500), NO_NUL],
                           metadata={"description": "next_cursor of the previous page."})


class Result(Schema):
    class Meta:
        ordered = True

    asset_id = fields.UUID()
    asset_name = fields.String()
    control = fields.String()
    status = fields.String(validate=validate.OneOf(STATUSES))
    reason = fields.String()
    evaluated_at = fields.DateTime()


class ResultPage(Schema):
    items = fields.List(fields.Nested(Result))
    next_cursor = fields.String(allow_none=True)


class ExceptionRequest(StrictSchema):
    """Let one asset fail one control, for a reason, until a date at most a year away."""

    asset_id = fields.UUID(required=True)
    control = control_choice(required=True)
    reason = fields.String(required=True, validate=[validate.Length(max=REASON_MAX), NO_NUL],
                           metadata={"description": "Why the asset may fail the control "
                                                    "(not blank)."})
    expires_at = fields.AwareDateTime(
        required=True, format="iso",
        metadata={"description": "ISO 8601 with a zone, in the future and at most a year away."})
