"""Discovery import pages: upload and list runs, watch one run, run it again, cancel it, undo
it (its change set)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from webapp import jobs
from webapp.extensions import db
from webapp.imports import bp
from webapp.imports.forms import UploadForm
from webapp.models import ChangeSet, ImportRun, RecordOutcome, Role
from webapp.services import change_sets, imports, listing
from webapp.services.errors import InvalidState, ValidationFailed
from webapp.web.forms import apply_errors
from webapp.web.htmx import is_partial, render
from webapp.web.session import current_actor, role_required

RUNS_PER_PAGE = 25
RECORDS_PER_PAGE = 100
ROW_ERRORS_SHOWN = 50
# the blocks of imports/show.html an htmx request may ask for, by the id of its target
SHOW_BLOCKS = {"progress": "progress", "records": "records"}
RUN_NUMBER = RECORD_SEQ = listing.Integer(0, 999_999_999)


@bp.route("/imports")
@role_required(Role.viewer)
def index() -> Response:
    return _index(UploadForm())


@bp.route("/imports", methods=["POST"])
@role_required(Role.analyst)
def upload() -> Response:
    form = UploadForm()
    upload = request.files.get(form.file.name)
    if not form.validate_on_submit():
        return _index(form, status=422)
    if upload is None or not (upload.filename or "").strip():
        form.file.errors = ["Choose a discovery file to upload."]
        return _index(form, status=422)
    try:
        run = imports.create_run(
            db.session, current_actor(), data=upload.read(), filename=upload.filename,
            source=form.source.data, dry_run=form.dry_run.data,
        )
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _index(form, status=422)
    _start(run)
    return redirect(url_for("imports.show", run_id=run.id), 303)


def _index(form: UploadForm, status: int = 200) -> Response:
    before = listing.parse(RunsPage, request.args).before
    runs = imports.list_runs(db.session, limit=RUNS_PER_PAGE + 1, before_number=before)
    older = runs[RUNS_PER_PAGE - 1].number if len(runs) > RUNS_PER_PAGE else None
    # a failed upload answers with its form; a list request (paging, polling) with the list
    block = "upload" if request.method == "POST" else "runs"
    return render(
        "imports/index.html", block, status=status,
        form=form, runs=runs[:RUNS_PER_PAGE], older=older, before=before,
    )


@bp.route("/imports/<run_id>")
@role_required(Role.viewer)
def show(run_id: str) -> Response:
    run = imports.get_run(db.session, run_id)
    f = listing.parse(RecordsFilter, request.args)
    outcome, after = f.outcome, f.after
    block = SHOW_BLOCKS.get(request.headers.get("HX-Target", ""), "run")
    records: list = []
    if not (block == "progress" and is_partial()):  # a poll shows no records
        records = imports.list_records(
            db.session, run.id, outcome=outcome, after_seq=after, limit=RECORDS_PER_PAGE + 1,
        )
    next_after = records[RECORDS_PER_PAGE - 1].seq if len(records) > RECORDS_PER_PAGE else None
    # the run's change set, once it is over: what `Undo this import` reverses
    change_set = change_sets.get(db.session, run.change_set_id) \
        if run.change_set_id is not None and run.status.finished else None
    response = render(
        "imports/show.html", block,
        run=run, change_set=change_set, records=records[:RECORDS_PER_PAGE], outcome=outcome, after=after,
        asset_names=imports.asset_names(db.session, (r.asset_id for r in records[:RECORDS_PER_PAGE])),
        next_after=next_after, outcomes=list(RecordOutcome), row_errors_shown=ROW_ERRORS_SHOWN,
    )
    if block == "progress" and is_partial() and run.status.finished:
        # the last poll: the page's records section reloads itself once on this event
        response.headers["HX-Trigger"] = "import-finished"
    return response


@bp.route("/imports/<run_id>/retry", methods=["POST"])
@role_required(Role.analyst)
def retry(run_id: str) -> Response:
    run = imports.retry(db.session, current_actor(), run_id)
    _start(run)
    return redirect(url_for("imports.show", run_id=run.id), 303)


@bp.route("/imports/<run_id>/apply", methods=["POST"])
@role_required(Role.analyst)
def apply(run_id: str) -> Response:
    """`Apply this file`: a real run of a dry run's stored file."""
    run = imports.retry(db.session, current_actor(), run_id, apply=True)
    _start(run)
    return redirect(url_for("imports.show", run_id=run.id), 303)


@bp.route("/imports/<run_id>/cancel", methods=["POST"])
@role_required(Role.analyst)
def cancel(run_id: str) -> Response:
    run = imports.cancel(db.session, current_actor(), run_id)
    if run.status.finished:
        flash(f"{run.label.capitalize()} was cancelled before it started.", "success")
    else:
        flash(
            f"{run.label.capitalize()} stops after its current batch; batches already written stay.",
            "info",
        )
    return redirect(url_for("imports.show", run_id=run.id), 303)


@bp.route("/imports/<run_id>/undo", methods=["POST"])
@role_required(Role.analyst)
def undo(run_id: str) -> Response:
    """`Undo this import`: undo the run's change set (created assets to the trash, changed
    fields back, added links removed), then show the undo's change set."""
    run = imports.get_run(db.session, run_id)
    if run.change_set_id is None:
        raise InvalidState("This import wrote nothing that can be undone as a whole "
                           "(a dry run, or a run from before imports were change sets).")
    return _start_undo(change_sets.undo(db.session, current_actor(), run.change_set_id), run)


def _start_undo(change_set: ChangeSet, run: ImportRun) -> Response:
    """Apply the undo here when small, else as a job (its page has a progress bar)."""
    config = current_app.config
    what = f"Undo of {run.label}"
    if change_sets.runs_inline(change_set, int(config.get("BULK_INLINE_MAX") or change_sets.INLINE_MAX)):
        change_set = change_sets.execute(db.session, change_set.id, batch_size=int(
            config.get("BULK_BATCH_SIZE") or change_sets.BATCH_SIZE))
        if change_set.error:
            flash(f"{what} failed: {change_set.error}", "error")
        else:
            left = change_set.refused + change_set.failed
            flash(f"{what} applied ({change_set.label}): {change_set.changed:,} change"
                  f"{'s' if change_set.changed != 1 else ''} taken back"
                  + (f", {left:,} left as they were (listed below)." if left else "."),
                  "warning" if left else "success")
    else:
        started = jobs.change_sets.dispatch(change_set)
        flash(f"{what} is running ({change_set.label}), in batches.", "success")
        if started.notice:
            flash(started.notice, "warning")
    return redirect(url_for("change_sets.show", change_set_id=change_set.id), 303)


def _start(run: ImportRun) -> None:
    started = jobs.imports.dispatch(run)
    what = "Dry run" if run.dry_run else run.label.capitalize()
    flash(f"{what} of “{run.filename}” queued ({run.format}).", "success")
    if started.notice:
        flash(started.notice, "warning")


@dataclass
class RunsPage:
    """`/imports`' page position (`services/listing`)."""

    before: int | None = listing.arg(listing.Position(RUN_NUMBER))


@dataclass
class RecordsFilter:
    """A run page's record list: which outcome, from which record on."""

    outcome: RecordOutcome | None = listing.arg(listing.Choice(RecordOutcome))
    after: int | None = listing.arg(listing.Position(RECORD_SEQ))
