"""The review queue pages (SPEC §5 `/conflicts`): the queue with filters and bulk actions, one
item side by side with per-field choices, and resolving it (the next item loads in place)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, request, session, url_for
from werkzeug.wrappers import Response

from webapp.conflicts import bp
from webapp.conflicts import proposals as proposal_views
from webapp.extensions import db
from webapp.models import (
    ChangeSetKind,
    Conflict,
    ConflictKind,
    ConflictStatus,
    ImportRun,
    Role,
    User,
)
from webapp.services import change_sets, conflicts, listing, proposals, review_bulk, settings
from webapp.services.errors import InvalidState, StaleVersion, ValidationFailed
from webapp.web import navigation
from webapp.web.htmx import is_partial, render
from webapp.web.session import current_actor, role_required

PER_PAGE = 50
PROPOSALS_SHOWN = 10  # open proposed changes shown above the unfiltered queue
QUEUE_ARGS = ("import", "kind", "min_confidence", "status", "after")
FILTER_ARGS = ("import", "kind", "min_confidence", "status")  # what an item's page carries
UNDO_KEY = "review_undo"  # the last bulk resolution of this browser session, for its `Undo`
STATUS_ANY = "any"
KIND_LABELS = {ConflictKind.possible_duplicate: "Possible duplicate",
               ConflictKind.field_conflict: "Field conflict"}
DONE = {"merge": "Merged", "create": "Created a new asset for", "dismiss": "Dismissed"}
PAST = {"merge": "merged", "create": "a new asset created", "dismiss": "dismissed"}
VERB = {"merge": "Merge", "create": "Create new for", "dismiss": "Dismiss"}


@bp.context_processor
def review_queue() -> dict[str, Any]:
    return {"conflict_kind": kind_label}


def kind_label(conflict: Conflict) -> str:
    if conflict.kind == ConflictKind.possible_duplicate and conflict.duplicate_id is not None:
        return "Duplicate assets"
    return KIND_LABELS[conflict.kind]


# --- the queue ------------------------------------------------------------------------------

@dataclass
class QueueFilter:
    """The queue's filters as the URL holds them (`services/listing`), and what they mean to
    the service."""

    run_number: int | None = listing.arg(
        listing.Whole(1, 999_999_999, prefix="#", message="Enter an import number, e.g. 12."),
        name="import")
    kind: ConflictKind | None = listing.arg(
        listing.Choice(ConflictKind, message="Choose possible_duplicate or field_conflict."))
    min_confidence: float | None = listing.arg(listing.Percent())
    status_text: str = listing.arg(
        listing.Choice([*(s.value for s in ConflictStatus), STATUS_ANY],
                       message="Choose open, merged, created, dismissed or any."),
        name="status", default=ConflictStatus.open.value)
    after: str | None = listing.arg(listing.Raw())  # checked by the service (`cursor`)
    # as typed, to show again in the form
    import_text: str = ""
    min_percent: str = ""
    run: ImportRun | None = None

    @property
    def status(self) -> ConflictStatus | None:
        return None if self.status_text == STATUS_ANY else ConflictStatus(self.status_text)

    @property
    def narrowed(self) -> bool:
        return bool(self.import_text or self.kind or self.min_percent
                    or self.status != ConflictStatus.open)

    def args(self) -> dict[str, str]:
        """The query string of these filters (for the bulk form and its redirect)."""
        args = {"import": self.import_text, "kind": self.kind.value if self.kind else "",
                "min_confidence": self.min_percent, "status": self.status_text}
        return {k: v for k, v in args.items() if v and not (k == "status" and v == "open")}


def _typed() -> dict[str, str]:
    return {"import_text": request.args.get("import", "").strip(),
            "min_percent": request.args.get("min_confidence", "").strip().rstrip("%").strip()}


def _filter() -> QueueFilter:
    """Read the filters from the URL; ValidationFailed (422) naming each bad one."""
    f = listing.parse(QueueFilter, request.args, **_typed())
    if f.run_number is not None:
        f.run = conflicts.run_by_number(db.session, f.run_number)
        if f.run is None:
            raise ValidationFailed({"import": f"There is no import #{f.run_number}."},
                                   "Some filters are not valid.")
    return f


def _kept(names: tuple[str, ...] = QUEUE_ARGS) -> dict[str, str]:
    """The queue's filters of this request's query string, to carry on (only those: url_for
    reads `_scheme` and the like as instructions, not as query arguments)."""
    return {k: v for k in names if (v := request.args.get(k))}


@bp.route("/conflicts")
@role_required(Role.viewer)
def index() -> Response:
    if request.args.get("kind") == proposal_views.KIND:  # proposed changes (SPEC §5)
        return proposal_views.queue()
    return _queue()


def _queue(errors: dict[str, str] | None = None) -> Response:
    """The queue page; with `errors` (a refused bulk action) it answers 422 and shows them."""
    status = 422 if errors else 200
    try:
        f = _filter()
        page = conflicts.list_conflicts(
            db.session, status=f.status, kind=f.kind, min_confidence=f.min_confidence,
            import_run_id=f.run.id if f.run else None, limit=PER_PAGE, cursor=f.after,
        )
    except ValidationFailed as exc:
        f = QueueFilter(**_typed())
        page, errors, status = None, {**exc.errors, **(errors or {})}, 422
    # the last bulk resolution's `Undo`, shown once on the page after it (not in a partial)
    undo = session.pop(UNDO_KEY, None) if not is_partial() and not errors else None
    return render(
        "conflicts/index.html", "queue", status=status,
        page=page, f=f, errors=errors or {}, kinds=list(ConflictKind),
        statuses=[s.value for s in ConflictStatus] + [STATUS_ANY], undo=undo,
        differences=conflicts.differences(db.session, [r.conflict for r in page.items]) if page else {},
        # open proposed changes head the unfiltered queue (all of them: `kind=proposal`)
        proposals=proposals.list_proposals(db.session, limit=PROPOSALS_SHOWN)
        if page and not f.narrowed and not f.after else [],
    )


@bp.route("/conflicts/bulk", methods=["POST"])
@role_required(Role.reviewer)
def bulk() -> Response:
    """Resolve the selected items with one action and the default field choices, as one change
    set; more than one item asks for a confirmation first (a page: it works without JS). Back
    to the queue (its filters ride in the query string) with what happened and `Undo`."""
    action = request.form.get("action", "")
    try:
        ids = review_bulk.check_bulk(request.form.getlist("ids"), action)
        if len(ids) > 1 and request.form.get("confirmed") != "yes":
            return render("conflicts/confirm.html", "confirm", action=action, ids=ids,
                          items=review_bulk.selected(db.session, ids), verb=VERB[action],
                          target=url_for("conflicts.bulk", **_kept()),
                          back=url_for("conflicts.index", **_kept()))
        result = review_bulk.bulk_resolve(db.session, current_actor(), ids, action)
    except ValidationFailed as exc:
        return _queue(errors=exc.errors)
    navigation.forget_open_conflicts()
    done, refused = result.resolved, result.refused
    if done:
        session[UNDO_KEY] = {"id": str(result.change_set_id), "number": result.number,
                             "action": action, "count": len(done), "undoable": result.undoable,
                             "message": f"Resolved {len(done)} item{'s' if len(done) != 1 else ''} "
                                        f"({PAST[action]})."}
    if refused:
        flash(f"{len(refused)} item{'s were' if len(refused) != 1 else ' was'} not resolved: "
              + "; ".join(f"{o.label}: {o.reason}" for o in refused), "warning")
    return redirect(url_for("conflicts.index", **_kept()), 303)


@bp.route("/conflicts/undo/<change_set_id>", methods=["POST"])
@role_required(Role.reviewer)
def undo(change_set_id: str) -> Response:
    """Undo a bulk resolution: its dismissed items are open again; merges and created assets
    are listed as left as they are (they changed assets: see docs/decisions.md)."""
    original = change_sets.get(db.session, change_set_id)
    if original.kind is not ChangeSetKind.review:
        raise ValidationFailed({"change_set": "This change set is not a review resolution."},
                               "Only a resolution made from the review queue is undone here.")
    reverse = change_sets.execute(db.session, change_sets.undo(db.session, current_actor(), original.id).id)
    session.pop(UNDO_KEY, None)
    navigation.forget_open_conflicts()
    if reverse.error:
        flash(f"The undo failed: {reverse.error}", "error")
    else:
        flash(f"Undone: {reverse.changed} item{'s are' if reverse.changed != 1 else ' is'} open again.",
              "success")
    if reverse.refused:
        flash(f"{reverse.refused} item{'s were' if reverse.refused != 1 else ' was'} left as "
              + ("they were" if reverse.refused != 1 else "it was") + ": "
              + "; ".join(f"{r['name']}: {r['reason']}" for r in reverse.reported), "warning")
    return redirect(url_for("conflicts.index", **_kept()), 303)


# --- one item -------------------------------------------------------------------------------

@bp.route("/conflicts/<conflict_id>")
@role_required(Role.viewer)
def show(conflict_id: str) -> Response:
    return _detail(conflicts.get(db.session, conflict_id))


def _detail(conflict: Conflict, *, status: int = 200, error: str | None = None,
            errors: dict[str, str] | None = None, choices: dict[str, str] | None = None,
            oob: bool = False) -> Response:
    review = conflicts.compare(db.session, conflict)
    resolver = db.session.get(User, conflict.resolved_by) if conflict.resolved_by else None
    chosen = review.defaults()
    if choices:
        chosen.update({k: v for k, v in choices.items() if k in chosen and v in conflicts.CHOICES})
    why = conflicts.why_not_merged(conflict, float(settings.get(db.session, "auto_merge_threshold")))
    return render(
        "conflicts/show.html", "detail", status=status, why_not_merged=why,
        review=review, conflict=conflict, around=_neighbours(conflict), kept=_kept(FILTER_ARGS),
        resolver=resolver, chosen=chosen, error=error, errors=errors or {}, oob=oob,
    )


def _neighbours(conflict: Conflict) -> conflicts.Neighbours:
    """The items around this one within the filters of the list it came from (the query
    string): `Next` stays in that list."""
    f = _filter()
    return conflicts.neighbours(db.session, conflict, status=f.status, kind=f.kind,
                                import_run_id=f.run.id if f.run else None,
                                min_confidence=f.min_confidence)


@bp.route("/conflicts/<conflict_id>/resolve", methods=["POST"])
@role_required(Role.reviewer)
def resolve(conflict_id: str) -> Response:
    action = request.form.get("action", "")
    fields = {name.removeprefix("field-"): value for name, value in request.form.items()
              if name.startswith("field-")}
    try:
        conflict = conflicts.resolve(db.session, current_actor(), conflict_id, action, fields)
    except (InvalidState, StaleVersion, ValidationFailed) as exc:
        # the item again, with why nothing happened (already resolved: now read-only)
        errors = exc.errors if isinstance(exc, ValidationFailed) else {}
        return _detail(conflicts.get(db.session, conflict_id), status=exc.status,
                       error=exc.message, errors=errors, choices=fields, oob=is_partial())
    flash(f"{DONE[action]} {kind_label(conflict).lower()}"
          f"{' ' + conflict.record_key if conflict.record_key else ''}.", "success")
    following = _neighbours(conflict).after_resolving
    kept = _kept(FILTER_ARGS)
    target = (url_for("conflicts.show", conflict_id=following, **kept) if following
              else url_for("conflicts.index", **kept))
    if not is_partial():
        if following is None:
            flash("No open items left in the review queue.", "info")
        return redirect(target, 303)
    navigation.forget_open_conflicts()  # the count changed with this resolution
    if following is None:
        response = render("conflicts/show.html", "detail", review=None, conflict=None, oob=True,
                          kept=kept)
    else:
        response = _detail(conflicts.get(db.session, following), oob=True)
    response.headers["HX-Push-Url"] = target
    return response
