"""/api/v1/imports: upload discovery files, follow their runs, read each record's outcome.

An upload is stored and queued by `services.imports.create_run`, then handed to a runner by
`jobs.imports.dispatch` (RQ when Redis answers, else a thread in this server): the answer is
202 with the run's Location, and the client polls `GET /api/v1/imports/{id}` until `status`
is `succeeded`, `failed` or `cancelled`.
"""

from __future__ import annotations

import uuid
from typing import Any

import flask
from flask import url_for
from werkzeug.datastructures import CombinedMultiDict

from webapp import jobs
from webapp.api import import_schemas as schemas
from webapp.api.auth import SECURITY, api_actor, token_required
from webapp.api.common import document_errors, int_cursor
from webapp.api.parsing import ApiBlueprint, StrictJsonParser
from webapp.extensions import db
from webapp.models import ImportRecord, ImportRun, RecordOutcome, Role
from webapp.services import imports

MAX_CURSOR = 2**31 - 1  # run numbers and record positions are INTEGER columns


class MultipartParser(StrictJsonParser):
    """Reads the `form` location of a multipart body as its text fields and its files
    together, so one schema validates (and documents) the whole upload."""

    def load_form(self, req: flask.Request, schema: Any) -> Any:
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)


class ImportsBlueprint(ApiBlueprint):
    ARGUMENTS_PARSER = MultipartParser()


blp = ImportsBlueprint(
    "api_imports", __name__, url_prefix="/api/v1",
    description="Discovery imports: upload a file, follow its run, read each record's outcome.",
)


def _cursor(cursor: str | None) -> int | None:
    """A run number or record position (INTEGER columns) as an int; 422 when it is not one."""
    return int_cursor(cursor, MAX_CURSOR)


def _run(run: ImportRun) -> dict[str, Any]:
    return {
        "id": run.id, "number": run.number, "label": run.label, "filename": run.filename,
        "size": run.size, "sha256": run.sha256, "format": run.format, "source": run.source,
        "status": run.status.value, "dry_run": run.dry_run, "runner": run.runner,
        "progress": {"processed": run.processed, "total": run.total, "percent": run.percent},
        "created": run.created, "updated": run.updated, "unchanged": run.unchanged,
        "flagged": run.flagged, "failed": run.failed, "skipped": run.skipped, "linked": run.linked,
        "row_errors": run.row_errors or [], "warned": run.warned or 0,
        "row_warnings": run.row_warnings or [], "warnings": run.warnings or [], "error": run.error,
        "uploaded_by": run.uploaded_by, "uploaded_by_label": run.uploaded_by_label,
        "retry_of": run.retry_of, "change_set_id": run.change_set_id, "created_at": run.created_at, "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


def _record(record: ImportRecord) -> dict[str, Any]:
    return {
        "seq": record.seq, "key": record.key, "outcome": record.outcome.value,
        "asset_id": record.asset_id, "conflict_id": record.conflict_id,
        "message": record.message, "changes": record.changes,
    }


LOCATION = {"Location": {"description": "The run's URL, to poll.", "schema": {"type": "string"}}}


# The alias is the same view under a second rule (flask-smorest documents both).
@blp.route("/imports", methods=["POST"])
@blp.route("/assets/bulk-import", methods=["POST"])
@token_required(Role.analyst, write=True)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.ImportUpload, location="form", content_type="multipart/form-data",
               as_kwargs=False)
@blp.response(202, schemas.ImportAccepted, headers=LOCATION)
@document_errors(blp, (401, 403, 413, 422))
def upload(args: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Upload a discovery file (multipart `file`, optional `source` and `dry_run`).

    The file is checked (format detected from its content), stored and queued; the answer is
    202 with the run's Location. `POST /api/v1/assets/bulk-import` is the same operation.
    """
    file = args["file"]
    run = imports.create_run(
        db.session, api_actor(), data=file.read(), filename=file.filename,
        source=args.get("source"), dry_run=args["dry_run"],
    )
    started = jobs.imports.dispatch(run)
    body = {"id": run.id, "number": run.number, "status": run.status.value,
            "runner": started.runner, "notice": started.notice}
    return body, 202, {"Location": url_for("api_imports.get_import", run_id=run.id)}


@blp.route("/imports", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.ImportListArgs, location="query", as_kwargs=False)
@blp.response(200, schemas.ImportRunPage)
@document_errors(blp, (401, 403, 422))
def list_imports(args: dict[str, Any]) -> dict[str, Any]:
    """Import runs, newest first."""
    limit = args["limit"]
    runs = imports.list_runs(db.session, limit=limit + 1, before_number=_cursor(args.get("cursor")))
    more = len(runs) > limit
    runs = runs[:limit]
    return {"items": [_run(r) for r in runs],
            "next_cursor": str(runs[-1].number) if more and runs else None}


@blp.route("/imports/<uuid:run_id>", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.response(200, schemas.ImportRun)
@document_errors(blp, (401, 403, 404))
def get_import(run_id: uuid.UUID) -> dict[str, Any]:
    """One run: status, progress, counts, row errors, warnings and, when it failed, why."""
    return _run(imports.get_run(db.session, run_id))


@blp.route("/imports/<uuid:run_id>/records", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.ImportRecordArgs, location="query", as_kwargs=False)
@blp.response(200, schemas.ImportRecordPage)
@document_errors(blp, (401, 403, 404, 422))
def list_import_records(args: dict[str, Any], run_id: uuid.UUID) -> dict[str, Any]:
    """One line per input record, in file order: its key, outcome, asset and message."""
    run = imports.get_run(db.session, run_id)
    limit = args["limit"]
    outcome = RecordOutcome(args["outcome"]) if args.get("outcome") else None
    records = imports.list_records(db.session, run.id, outcome=outcome,
                                   after_seq=_cursor(args.get("cursor")), limit=limit + 1)
    more = len(records) > limit
    records = records[:limit]
    return {"items": [_record(r) for r in records],
            "next_cursor": str(records[-1].seq) if more and records else None}
