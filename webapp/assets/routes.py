"""Inventory pages: list, detail, history, create, edit, delete, trash, tags, reveal."""

from __future__ import annotations

import dataclasses

from flask import flash, redirect, request, url_for
from flask_login import current_user
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from webapp.assets import bp
from webapp.assets.forms import AssetForm, TagForm
from webapp.extensions import db
from webapp.models import Asset, Proposal, Role
from webapp.services import (
    asset_history,
    asset_search,
    audit,
    exports,
    imports,
    preferences,
    proposals,
)
from webapp.services import assets as asset_service
from webapp.services.errors import StaleVersion, ValidationFailed
from webapp.web.downloads import streamed
from webapp.web.forms import apply_errors
from webapp.web.htmx import is_partial, render
from webapp.web.session import current_actor, role_required

# what the list's links carry back after its display is saved: the filter and sort, not the
# position or a one-off page size
KEPT_ARGS = frozenset(f.name for f in dataclasses.fields(asset_search.AssetQuery)) - {
    "limit", "after", "before", "cursor", "deleted"}


# what the History tab shows of the asset itself (its header and tabs, the revert form)
HEADER = (Asset.name, Asset.version, Asset.deleted_at)


def _list_args() -> MultiDict[str, str]:
    """The list's query arguments, empty ones left out; a repeated filter stays a list
    (`engine=postgresql&engine=mysql`)."""
    return MultiDict([(k, v) for k, v in request.args.items(multi=True) if v])


@bp.context_processor
def approval() -> dict[str, object]:
    return {"waiting_changes": waiting_changes}


def waiting_changes(asset) -> dict[str, object] | None:  # type: ignore[no-untyped-def]
    """The asset page's "N changes waiting for approval" and where it leads (SPEC §5): the
    proposal itself when there is one, else the queue's proposed changes of this asset."""
    rows = proposals.list_proposals(db.session, asset_id=asset.id, limit=2)
    if not rows:
        return None
    count = len(rows) if len(rows) < 2 else proposals.open_count(db.session, asset.id)
    url = (url_for("conflicts.proposal", proposal_id=rows[0].proposal.id) if count == 1
           else url_for("conflicts.index", kind="proposal", asset=asset.id))
    return {"count": count, "url": url}


@bp.route("/assets")
@role_required(Role.viewer)
def index() -> Response:
    display = preferences.asset_list(current_user)
    try:
        query = asset_search.parse_query(_list_args(), max_limit=200)
        if "limit" not in request.args:  # the person's own page size, unless the link says one
            query.limit = display.page_size
        page = asset_search.list_assets(db.session, query, fields=display.fields)
        errors: dict[str, str] = {}
    except ValidationFailed as exc:
        query, page, errors = asset_search.AssetQuery(), None, exc.errors
    return render(
        "assets/index.html", "results", status=422 if errors else 200,
        page=page, query=query, errors=errors,
        sorts=asset_search.SORTS, display=display, columns=preferences.COLUMNS,
        page_sizes=preferences.PAGE_SIZES,
    )


@bp.route("/assets/display", methods=["POST"])
@role_required(Role.viewer)
def save_display() -> Response:
    """Keep the person's rows per page and columns, then show the list they came from."""
    preferences.save_asset_list(
        db.session, current_actor(), current_user, page_size=request.form.get("page_size"),
        columns=request.form.getlist("columns"),
    )
    flash("List display saved.", "success")
    # back to the same filter and sort; the saved page size replaces a one-off `limit`
    back = MultiDict([(k, v) for k, v in request.form.items(multi=True) if k in KEPT_ARGS and v])
    return redirect(url_for("assets.index", **back.to_dict(flat=False)), 303)


@bp.route("/assets/owners")
@role_required(Role.viewer)
def owners() -> Response:
    """The owner filter's suggestions (a datalist's options), as the person types."""
    prefix = request.args.get("owner", "")[:200]
    return render("assets/_owner_options.html", None,
                  owners=asset_search.owner_suggestions(db.session, prefix))


@bp.route("/assets/export")
@role_required(Role.analyst)
def export() -> Response:
    """The list's current filter and sort as a streamed file (`format`: csv, json or xlsx)."""
    query = asset_search.parse_query(_list_args(), max_limit=200)
    started = exports.start(db.session, current_actor(), query, request.args.get("format", ""))
    return streamed(started)


@bp.route("/assets/new", methods=["GET", "POST"])
@role_required(Role.analyst)
def new() -> Response:
    form = AssetForm()
    status = 200
    if form.validate_on_submit():
        try:
            asset = asset_service.create(db.session, current_actor(), form.to_data())
        except ValidationFailed as exc:
            apply_errors(form, exc)
            status = 422
        else:
            flash(f"Asset “{asset.name}” created.", "success")
            return redirect(url_for("assets.show", asset_id=asset.id), 303)
    elif request.method == "POST":
        status = 422
    return render("assets/form.html", "content", status=status, form=form, asset=None)


@bp.route("/assets/<asset_id>")
@role_required(Role.viewer)
def show(asset_id: str) -> Response:
    asset = asset_service.get(db.session, asset_id)
    return render("assets/show.html", "content", asset=asset, tab="overview",
                  tag_form=TagForm(), revealed=None,
                  sightings=imports.sightings(db.session, asset.id))


@bp.route("/assets/<asset_id>/history")
@role_required(Role.viewer)
def history(asset_id: str) -> Response:
    shown = _int_or_none(request.args.get("version"))
    # the tab's header needs three columns; a past version's view reads every field
    asset = asset_service.get(db.session, asset_id, only=() if shown else HEADER)
    before = _int_or_none(request.args.get("before"))
    events, older = asset_history.page(db.session, asset.id, before)
    if before is not None and is_partial():  # "Show older events": the next items of the list
        return render("assets/history.html", "older", asset=asset, events=events, older=older)
    as_of = asset_service.state_at(db.session, asset, shown) if shown else None
    return render("assets/history.html", "content", asset=asset, tab="history", events=events,
                  older=older, before=before, shown_version=shown, as_of=as_of)


@bp.route("/assets/<asset_id>/revert", methods=["POST"])
@role_required(Role.analyst)
def revert(asset_id: str) -> Response:
    to_version = _int_or_none(request.form.get("to_version"))
    if to_version is None:
        raise ValidationFailed({"to_version": "Choose a version to revert to."})
    result = proposals.revert(
        db.session, current_actor(), asset_id, to_version,
        expected_version=_int_or_none(request.form.get("version")),
    )
    if isinstance(result, Proposal):
        _flash_saved(result, "")
        return _redirect(url_for("assets.show", asset_id=result.asset_id))
    flash(f"Reverted to version {to_version}; this is now version {result.version}.", "success")
    return _redirect(url_for("assets.history", asset_id=result.id))


@bp.route("/assets/<asset_id>/edit", methods=["GET", "POST"])
@role_required(Role.analyst)
def edit(asset_id: str) -> Response:
    asset = asset_service.get(db.session, asset_id)
    if asset.deleted_at is not None:
        flash("This asset is in the trash. Restore it before editing.", "warning")
        return redirect(url_for("assets.show", asset_id=asset.id), 303)
    form = AssetForm()
    status, their_changes = 200, None
    if request.method == "GET":
        form.fill_from(asset)
    elif form.validate_on_submit():
        base_version = _int_or_none(form.version.data)
        try:
            result = proposals.submit(
                db.session, current_actor(), asset.id, form.to_data(),
                expected_version=base_version,
            )
        except StaleVersion as exc:
            # keep the user's input; show what the other person changed; next save applies on top
            current = exc.current
            their_changes = asset_service.changes_since(db.session, current, base_version or 0)
            _carry_their_changes(form, current, their_changes)
            form.version.data = str(current.version)
            status = 409
        except ValidationFailed as exc:
            apply_errors(form, exc)
            status = 422
        else:
            _flash_saved(result, "Changes saved.")
            return redirect(url_for("assets.show", asset_id=asset.id), 303)
    else:
        status = 422
    return render("assets/form.html", "content", status=status, form=form, asset=asset,
                  their_changes=their_changes)


@bp.route("/assets/<asset_id>/delete", methods=["POST"])
@role_required(Role.analyst)
def delete(asset_id: str) -> Response:
    asset = asset_service.delete(
        db.session, current_actor(), asset_id,
        expected_version=_int_or_none(request.form.get("version")),
    )
    flash(f"“{asset.name}” moved to the trash.", "success")
    return _redirect(url_for("assets.index"))


@bp.route("/assets/<asset_id>/restore", methods=["POST"])
@role_required(Role.analyst)
def restore(asset_id: str) -> Response:
    asset = asset_service.restore(db.session, current_actor(), asset_id)
    flash(f"“{asset.name}” restored.", "success")
    return _redirect(url_for("assets.show", asset_id=asset.id))


@bp.route("/assets/<asset_id>/purge", methods=["POST"])
@role_required(Role.admin)
def purge(asset_id: str) -> Response:
    asset = asset_service.get(db.session, asset_id)
    name = asset.name
    asset_service.purge(db.session, current_actor(), asset.id)
    flash(f"“{name}” purged for good. Its history stays in the audit log.", "success")
    return _redirect(url_for("assets.trash"))


@bp.route("/trash")
@role_required(Role.viewer)
def trash() -> Response:
    # a bad filter or page link is a 422 with the reason, as on /assets
    query = asset_search.parse_query(_list_args(), max_limit=200)
    query.deleted = True
    if "sort" not in request.args:
        query.sort = "-updated_at"
    page = asset_search.list_assets(db.session, query)
    return render("assets/trash.html", "results", page=page, query=query)


@bp.route("/assets/<asset_id>/tags", methods=["POST"])
@role_required(Role.analyst)
def add_tag(asset_id: str) -> Response:
    form = TagForm()
    if not form.validate_on_submit():
        raise ValidationFailed({"tag": "Enter a tag name."})
    result = proposals.add_tag(db.session, current_actor(), asset_id, form.tag.data or "")
    return _tags_or_redirect(result)


@bp.route("/assets/<asset_id>/tags/<tag>/delete", methods=["POST"])
@role_required(Role.analyst)
def remove_tag(asset_id: str, tag: str) -> Response:
    result = proposals.remove_tag(db.session, current_actor(), asset_id, tag)
    return _tags_or_redirect(result)


@bp.route("/assets/<asset_id>/reveal", methods=["POST"])
@role_required(Role.admin)
def reveal(asset_id: str) -> Response:
    asset = asset_service.get(db.session, asset_id)
    secret = asset_service.reveal_connection_string(db.session, current_actor(), asset.id)
    # without htmx the whole page comes back, sightings and all
    sightings = [] if is_partial() else imports.sightings(db.session, asset.id)
    return render("assets/show.html", "secret", asset=asset, tab="overview", tag_form=TagForm(),
                  revealed=secret or "", sightings=sightings)


def _carry_their_changes(form: AssetForm, current, their_changes: dict) -> None:  # type: ignore[no-untyped-def]
    """After an edit conflict, fields this person left as they were but someone else changed show
    the other person's value, so saving the form again does not undo their change. Fields both
    changed keep this person's input (the conflict box shows theirs)."""
    mine = form.to_data()
    latest = AssetForm(formdata=None)
    latest.fill_from(current)
    for name, (then, _now) in their_changes.items():
        check = asset_service.FIELDS.get(name)
        if check is None or name not in mine or name == "connection_string":
            continue
        try:
            untouched = audit.jsonable(check(mine[name])) == then
        except ValueError:
            continue
        if untouched:
            field = getattr(form, name)
            field.data = getattr(latest, name).data
            field.raw_data = None  # render .data, not what was posted


def _flash_saved(result, saved: str) -> None:  # type: ignore[no-untyped-def]
    """What a person's edit did: saved, or held for approval (SPEC §5, proposals)."""
    if isinstance(result, Proposal):
        flash("This asset needs a second person's approval for changes: your change was saved as "
              "a proposal and waits for a reviewer. The asset is unchanged until then.", "info")
    else:
        flash(saved, "success")


def _tags_or_redirect(result) -> Response:  # type: ignore[no-untyped-def]
    if isinstance(result, Proposal):  # the page again, with the proposal's notice
        _flash_saved(result, "")
        return _redirect(url_for("assets.show", asset_id=result.asset_id))
    asset = result
    if is_partial():
        return render("assets/show.html", "tags", asset=asset, tag_form=TagForm())
    return redirect(url_for("assets.show", asset_id=asset.id), 303)


def _redirect(target: str) -> Response:
    """After a POST: a normal redirect, or HX-Redirect for htmx."""
    if is_partial():
        response = Response(status=204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, 303)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


