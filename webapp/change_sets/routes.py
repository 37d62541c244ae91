"""Bulk actions (SPEC §5): choose an action for the selected assets (or every asset a filter
matches), see the preview, apply it as one change set, watch it run, undo it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app, flash, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from webapp import jobs
from webapp.change_sets import bp
from webapp.change_sets.forms import SCOPES, BulkForm, errors_for_form
from webapp.extensions import db
from webapp.models import ChangeSet, ChangeSetKind, Role
from webapp.services import asset_search, change_sets, listing
from webapp.services.errors import Forbidden, ValidationFailed
from webapp.web.forms import apply_errors
from webapp.web.htmx import is_partial, render
from webapp.web.session import current_actor, role_required

CHANGE_SETS_PER_PAGE = 25
# query arguments of the list that are not its filter (position, size, order, export format),
# and this blueprint's own
NOT_FILTER = frozenset({"after", "before", "cursor", "limit", "sort", "format", "ids", "scope"})


@bp.app_context_processor
def bulk_helpers() -> dict[str, Any]:
    """For the inventory page's bulk bar: the empty form's fields, and where to send it."""
    return {"blank_bulk_form": blank_bulk_form, "bulk_target": _target}


def blank_bulk_form() -> dict[str, Any]:
    """The empty bulk form's fields and button, rendered once per app: its choices come from the
    field catalogue, so every page shows the same HTML (rendering the WTForms fields was a sixth
    of the inventory page's time)."""
    cached = current_app.extensions.get("blank_bulk_form")
    if cached is None:
        form = BulkForm(formdata=None)
        macros = current_app.jinja_env.get_template("change_sets/_macros.html").module
        cached = {"fields": macros.bulk_fields(form),  # type: ignore[attr-defined]
                  "submit": form.submit(class_="primary")}
        current_app.extensions["blank_bulk_form"] = cached
    return cached


def _filter_args() -> list[tuple[str, str]]:
    """The list filter of this request's query string, as pairs (a filter may repeat)."""
    # `_name` arguments are url_for's own (`_external`, `_scheme`, …), never a filter
    return [(k, v) for k, v in request.args.items(multi=True)
            if k not in NOT_FILTER and v and not k.startswith("_")]


def _target() -> str:
    """The bulk form's action: the new-change page, carrying the list's filter."""
    return url_for("change_sets.new", **_grouped(_filter_args()))


def _grouped(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}


def _scope() -> tuple[str, list[str]]:
    values = request.form if request.method == "POST" else request.args
    scope = values.get("scope") or "ids"
    if scope not in SCOPES:
        raise ValidationFailed({"scope": "Choose the selected rows or every asset matching the filter."})
    return scope, values.getlist("ids")


def _selection(scope: str, ids: list[str]) -> change_sets.Selection:
    if scope == "ids":
        return change_sets.Selection.of_ids(ids)
    filters = _filter_args()
    query = asset_search.parse_query(request.args)
    return change_sets.Selection.of_filter(query, _grouped(filters))


@bp.route("/change-sets/new", methods=["GET", "POST"])
@role_required(Role.analyst)
def new() -> Response:
    """The bulk action form for a selection; posting it makes a preview (nothing changes yet)."""
    form = BulkForm() if request.method == "POST" else BulkForm(formdata=None)
    scope, ids = _scope()
    if request.method == "POST":
        try:
            selection = _selection(scope, ids)
            action = change_sets.BulkAction.parse(**form.to_action())
            change_set = change_sets.create(db.session, current_actor(), selection, action)
        except ValidationFailed as exc:
            apply_errors(form, ValidationFailed(errors_for_form(exc.errors), exc.message))
            return _new_page(form, scope, ids, status=422)
        return redirect(url_for("change_sets.show", change_set_id=change_set.id), 303)
    return _new_page(form, scope, ids)


def _new_page(form: BulkForm, scope: str, ids: list[str], status: int = 200) -> Response:
    return render("change_sets/new.html", "bulk", status=status, form=form, scope=scope, ids=ids,
                  filters=_filter_args())


@bp.route("/change-sets")
@role_required(Role.viewer)
def index() -> Response:
    before = listing.parse(ChangeSetsPage, request.args).before
    found = change_sets.recent(db.session, limit=CHANGE_SETS_PER_PAGE + 1, before_number=before)
    older = found[CHANGE_SETS_PER_PAGE - 1].number if len(found) > CHANGE_SETS_PER_PAGE else None
    return render("change_sets/index.html", "change_sets", change_sets=found[:CHANGE_SETS_PER_PAGE],
                  older=older, before=before, describe=change_sets.describe)


@bp.route("/change-sets/<change_set_id>")
@role_required(Role.viewer)
def show(change_set_id: str) -> Response:
    change_set = change_sets.get(db.session, change_set_id)
    polled = is_partial() and request.headers.get("HX-Target") == "progress"
    return render("change_sets/show.html", "progress" if polled else "change_set", cs=change_set,
                  describe=change_sets.describe)


@bp.route("/change-sets/<change_set_id>/apply", methods=["POST"])
@role_required(Role.analyst)
def apply(change_set_id: str) -> Response:
    change_set = change_sets.apply(db.session, current_actor(), change_set_id)
    return _start(change_set)


@bp.route("/change-sets/<change_set_id>/undo", methods=["POST"])
@role_required(Role.analyst)
def undo(change_set_id: str) -> Response:
    # resolving review items takes a reviewer (SPEC §4): so does reopening them
    if (change_sets.get(db.session, change_set_id).kind is ChangeSetKind.review
            and not current_user.has_role(Role.reviewer)):
        raise Forbidden("Undoing a review resolution takes the reviewer role.")
    change_set = change_sets.undo(db.session, current_actor(), change_set_id)
    return _start(change_set)


def _start(change_set: ChangeSet) -> Response:
    """Apply a queued change set: here when small, else as a job (a progress bar shows it)."""
    config = current_app.config
    label = change_set.label.capitalize()
    if change_sets.runs_inline(change_set, int(config.get("BULK_INLINE_MAX") or change_sets.INLINE_MAX)):
        change_set = change_sets.execute(db.session, change_set.id, batch_size=int(
            config.get("BULK_BATCH_SIZE") or change_sets.BATCH_SIZE))
        if change_set.error:
            flash(f"{label} failed: {change_set.error}", "error")
        else:
            flash(f"{label} applied: {change_set.changed:,} asset{'s' if change_set.changed != 1 else ''} "
                  "changed.", "success")
    else:
        started = jobs.change_sets.dispatch(change_set)
        flash(f"{label} is running: {change_set.total:,} assets, in batches.", "success")
        if started.notice:
            flash(started.notice, "warning")
    return redirect(url_for("change_sets.show", change_set_id=change_set.id), 303)


@dataclass
class ChangeSetsPage:
    """`/change-sets`' page position (`services/listing`): the number to list before."""

    before: int | None = listing.arg(listing.Position(listing.Integer(0, 999_999_999)))
