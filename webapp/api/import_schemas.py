"""Marshmallow schemas of /api/v1/imports: the multipart upload, runs, and record outcomes."""

from __future__ import annotations

from typing import Any

from flask_smorest.fields import Upload
from marshmallow import RAISE, Schema, fields, validate
from werkzeug.datastructures import FileStorage

from webapp.api.schemas import NO_NUL
from webapp.discovery import FORMATS
from webapp.models import ImportStatus, RecordOutcome
from webapp.services.imports import SOURCE_MAX

STATUSES = [s.value for s in ImportStatus]
OUTCOMES = [o.value for o in RecordOutcome]


class UploadedFile(Upload):
    """A file part of a multipart body (documented as `format: binary`). A plain text field
    named `file` is not a file: curl's `-F file=@scan.xml` sends one, `-F file=scan.xml` not."""

    default_error_messages = {
        "invalid": "Send the discovery file as a file part, e.g. curl -F file=@scan.xml.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> FileStorage:
        if not isinstance(value, FileStorage):
            raise self.make_error("invalid")
        return value


class ImportUpload(Schema):
    """The upload: a discovery file, an optional source label, and whether it is a dry run."""

    class Meta:
        # as for JSON bodies: a misspelt `dryrun=true` must not become a real import
        unknown = RAISE
        ordered = True

    file = UploadedFile(
        required=True,
        error_messages={"required": "Choose a discovery file to upload."},
        metadata={"description": "The discovery file. Its format is detected from its content: "
                                 + ", ".join(FORMATS) + "."},
    )
    source = fields.String(
        validate=[validate.Length(max=SOURCE_MAX), NO_NUL],
        metadata={"description": "Source label recorded on the assets (default: the format's "
                                 "name). `manual` is reserved for people."},
    )
    dry_run = fields.Boolean(
        load_default=False,
        metadata={"description": "Match and count what would change, write nothing "
                                 "(`true`/`false`, `1`/`0`, `on`)."},
    )


class ImportAccepted(Schema):
    class Meta:
        ordered = True

    id = fields.UUID()
    number = fields.Integer(metadata={"description": "Shown as `import #N`."})
    status = fields.String(validate=validate.OneOf(STATUSES))
    runner = fields.String(metadata={"description": "`rq` (a worker) or `thread` (in this server)."})
    notice = fields.String(
        allow_none=True,
        metadata={"description": "Something unusual about how the run was started, e.g. Redis "
                                 "was down so it runs inside the web server."},
    )


class ImportProgress(Schema):
    class Meta:
        ordered = True

    processed = fields.Integer()
    total = fields.Integer()
    percent = fields.Integer()


class RowError(Schema):
    class Meta:
        ordered = True

    row = fields.Integer(metadata={"description": "1-based data record number."})
    key = fields.String(metadata={"description": "The record key (`csv:4`, `aws_rds:…`)."})
    message = fields.String()


class ImportRun(Schema):
    """An import run: its file, state, progress and counts (SPEC §3 field names)."""

    class Meta:
        ordered = True

    id = fields.UUID()
    number = fields.Integer()
    label = fields.String(metadata={"description": "`import #N`: the actor of its audit events."})
    filename = fields.String()
    size = fields.Integer(metadata={"description": "Bytes."})
    sha256 = fields.String()
    format = fields.String(validate=validate.OneOf(list(FORMATS)))
    source = fields.String()
    status = fields.String(validate=validate.OneOf(STATUSES))
    dry_run = fields.Boolean()
    runner = fields.String(metadata={"description": "`rq`, `thread` or `inline`; empty until started."})
    progress = fields.Nested(ImportProgress)
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    flagged = fields.Integer()
    failed = fields.Integer()
    skipped = fields.Integer()
    linked = fields.Integer(metadata={"description": "Relationships the file stated (read replicas, "
                                                     "cluster members) that this run created."})
    row_errors = fields.List(fields.Nested(RowError),
                             metadata={"description": "Failed records (the first 1,000)."})
    warned = fields.Integer(metadata={"description": "Records written with a value left out."})
    row_warnings = fields.List(fields.Nested(RowError), metadata={
        "description": "What was left out of those records and why (the first 1,000)."})
    warnings = fields.List(fields.String(), metadata={"description": "File-level warnings."})
    error = fields.String(allow_none=True, metadata={"description": "Why the run failed or stopped."})
    uploaded_by = fields.UUID(allow_none=True)
    uploaded_by_label = fields.String()
    retry_of = fields.UUID(allow_none=True)
    change_set_id = fields.UUID(allow_none=True, metadata={
        "description": "The run's change set (a real run; null for a dry run): "
                       "`POST /api/v1/change-sets/{id}/undo` undoes the import."})
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class ImportRunPage(Schema):
    items = fields.List(fields.Nested(ImportRun))
    next_cursor = fields.String(allow_none=True)


class ImportListArgs(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 100))
    cursor = fields.String(validate=[validate.Length(max=20), NO_NUL],
                           metadata={"description": "next_cursor of the previous page."})


class ImportRecord(Schema):
    class Meta:
        ordered = True

    seq = fields.Integer(metadata={"description": "Position in the file, 1-based."})
    key = fields.String()
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    asset_id = fields.UUID(allow_none=True)
    conflict_id = fields.UUID(allow_none=True)
    message = fields.String(allow_none=True)
    changes = fields.Dict(allow_none=True,
                          metadata={"description": "`{field: [old, new]}` of an update."})


class ImportRecordPage(Schema):
    items = fields.List(fields.Nested(ImportRecord))
    next_cursor = fields.String(allow_none=True)


class ImportRecordArgs(Schema):
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))
    cursor = fields.String(validate=[validate.Length(max=20), NO_NUL],
                           metadata={"description": "next_cursor of the previous page."})

