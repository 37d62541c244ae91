"""Relationship pages (SPEC §5): an asset's Relationships tab (its links, adding and removing
one, the impact list, and the dependency graph the browser draws from `graph.json`), and
`/relationships`, every link with filters and keyset paging.

The graph's data comes from `graph.json` here, on the signed-in session: the API at /api/v1 takes
tokens only. It is the same answer as the API's (`relationships.graph_json`).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import flash, make_response, redirect, request, url_for
from jinja2_fragments.flask import render_block
from werkzeug.wrappers import Response

from webapp.extensions import db
from webapp.models import (
    Asset,
    AssetRelationship,
    Criticality,
    Engine,
    Environment,
    RelationshipKind,
    Role,
)
from webapp.relationships import bp
from webapp.services import asset_search, imports, listing, relationships
from webapp.services import assets as asset_service
from webapp.services.errors import DomainError, InvalidState, NotFound, ValidationFailed
from webapp.web.errors import problem
from webapp.web.htmx import is_partial, render
from webapp.web.session import current_actor, role_required

PER_PAGE = 50
FIND_LIMIT = 10  # matches shown under `Find asset`
# the page's Depth select; deeper neighbourhoods are unreadable drawn (the API goes to MAX_DEPTH)
GRAPH_DEPTHS = tuple(range(1, 6))
DIRECTIONS = {"up": "Upstream", "down": "Downstream", "both": "Both"}
# the graph's `Colour by` choices: the label, and the values in the legend's order (graph.js
# reads them from the option; the colours are --env-*, --engine-*, --crit-* in app.css)
COLOURS = {
    "environment": ("Environment", [e.value for e in Environment]),
    "engine": ("Engine", [e.value for e in Engine]),
    # most critical first, as the impact list (the enum goes from low to critical)
    "criticality": ("Criticality", [c.value for c in reversed(Criticality)] + ["none"]),
}
ORIGINS = ("manual", "discovered")
LIST_ARGS = ("q", "kind", "origin", "after")
OUTGOING, INCOMING = "outgoing", "incoming"
CHANGED_EVENT = "relationships-changed"  # HX-Trigger: the graph reloads its data (graph.js)


# --- reading the request ------------------------------------------------------------------------

@dataclass
class GraphView:
    """The graph's controls as the URL holds them (`?depth=&direction=&colour=`)."""

    depth: int = relationships.DEFAULT_DEPTH
    direction: str = "both"
    colour: str = "environment"


def _graph_view() -> GraphView:
    view, errors = GraphView(), {}
    depth = request.args.get("depth", "").strip()
    if depth:
        if not (depth.isascii() and depth.isdigit()) or int(depth[:3]) not in GRAPH_DEPTHS:
            errors["depth"] = f"Choose a depth from {GRAPH_DEPTHS[0]} to {GRAPH_DEPTHS[-1]}."
        else:
            view.depth = int(depth)
    direction = request.args.get("direction", "").strip()
    if direction:
        if direction not in DIRECTIONS:
            errors["direction"] = "Choose up, down or both."
        else:
            view.direction = direction
    colour = request.args.get("colour", "").strip()
    if colour:
        if colour not in COLOURS:
            errors["colour"] = "Choose environment, engine or criticality."
        else:
            view.colour = colour
    if errors:
        raise ValidationFailed(errors, "The graph's settings are not valid.")
    return view


@dataclass
class LinkForm:
    """The Add relationship form: what was posted, to show again with its errors."""

    kind: str = RelationshipKind.depends_on.value
    direction: str = OUTGOING
    target_id: str = ""
    target: Asset | None = None  # the chosen asset, shown by name
    description: str = ""

    @classmethod
    def posted(cls) -> LinkForm:
        form = cls(kind=request.form.get("kind", ""), direction=request.form.get("direction", ""),
                   target_id=request.form.get("target_id", "").strip(),
                   description=request.form.get("description", ""))
        if form.target_id:
            try:
                form.target = asset_service.get(db.session, form.target_id)
            except NotFound:
                form.target = None
        return form


def _link_errors(form: LinkForm, exc: ValidationFailed) -> dict[str, str]:
    """The service's messages on the form's fields. It names the ends `source_id` and
    `target_id`; which of them is the asset picked under `Find asset` depends on the direction.
    A message about this asset (e.g. it is in the trash) goes to the top of the form."""
    picked = "source_id" if form.direction == INCOMING else "target_id"
    errors: dict[str, str] = {}
    for name, message in exc.errors.items():
        if name == picked:
            errors["target_id"] = message
        elif name in ("source_id", "target_id"):
            errors["form"] = message
        else:
            errors[name] = message
    return errors


def _typed(value: str) -> str:
    """Search text as typed (NUL and invalid Unicode were refused where the request parsed it)."""
    return value.strip()[:200]


# --- the asset's Relationships tab ------------------------------------------------------------

def _tab(asset: Asset, *, form: LinkForm | None = None, errors: dict[str, str] | None = None,
         status: int = 200, oob: bool = False, changed: bool = False,
         view: GraphView | None = None) -> Response:
    """The tab as a whole page, or its `panel` block for htmx (after adding or removing: with
    the flash out of band, and an event that makes the graph reload)."""
    links = relationships.of_asset(db.session, asset.id)
    response = render(
        "relationships/tab.html", "panel", status=status,
        asset=asset, tab="relationships", links=links,
        runs=imports.run_numbers(db.session, (link.relationship.import_run_id for link in links)),
        cycle=relationships.cycle_members(db.session, asset.id),
        impact=relationships.impact(db.session, asset.id),
        form=form or LinkForm(), errors=errors or {}, oob=oob,
        kinds=list(RelationshipKind), phrases=relationships.PHRASE,
        view=view or GraphView(), depths=GRAPH_DEPTHS, directions=DIRECTIONS, colours=COLOURS,
        environments=list(Environment),
    )
    if changed:
        response.headers["HX-Trigger"] = CHANGED_EVENT
    return response


@bp.route("/assets/<asset_id>/relationships")
@role_required(Role.viewer)
def tab(asset_id: str) -> Response:
    asset = asset_service.get(db.session, asset_id)
    return _tab(asset, view=_graph_view())


@bp.route("/assets/<asset_id>/relationships", methods=["POST"])
@role_required(Role.analyst)
def add(asset_id: str) -> Response:
    asset = asset_service.get(db.session, asset_id)
    form = LinkForm.posted()
    if form.direction not in (OUTGOING, INCOMING):
        return _tab(asset, form=form, status=422,
                    errors={"direction": "Choose which way the link goes."})
    ends = (asset.id, form.target_id) if form.direction == OUTGOING else (form.target_id, asset.id)
    try:
        rel = relationships.create(db.session, current_actor(), source_id=ends[0],
                                   target_id=ends[1], kind=form.kind or None,
                                   description=form.description)
    except ValidationFailed as exc:
        return _tab(asset, form=form, errors=_link_errors(form, exc), status=422)
    except InvalidState as exc:  # the same link already exists
        return _tab(asset, form=form, errors={"form": exc.message}, status=409)
    source, target = _ends(rel)
    sentence = relationships.describe(RelationshipKind(rel.kind), source.name, target.name)
    flash(f"Added: {sentence}.", "success")
    if relationships.closes_cycle(db.session, rel):
        flash(f"This closes a dependency cycle: {target.name} already depends on "
              f"{source.name}, directly or through other assets.", "warning")
    return _after_change(asset)


@bp.route("/assets/<asset_id>/relationships/<relationship_id>/delete", methods=["POST"])
@role_required(Role.analyst)
def remove(asset_id: str, relationship_id: str) -> Response:
    asset = asset_service.get(db.session, asset_id)
    rel = relationships.get(db.session, relationship_id)
    if asset.id not in (rel.source_id, rel.target_id):
        raise NotFound("This asset has no such relationship.")
    _delete(rel)
    return _after_change(asset)


def _ends(rel: AssetRelationship) -> tuple[Asset, Asset]:
    """Both ends (already in the session after create() or of_asset(): no query)."""
    source, target = db.session.get(Asset, rel.source_id), db.session.get(Asset, rel.target_id)
    if source is None or target is None:  # the foreign keys cascade: cannot happen
        raise NotFound("There is no such relationship.")
    return source, target


def _delete(rel: AssetRelationship) -> None:
    source, target = _ends(rel)
    sentence = relationships.describe(RelationshipKind(rel.kind), source.name, target.name)
    relationships.delete(db.session, current_actor(), rel.id)
    flash(f"Removed: {sentence}.", "success")


def _after_change(asset: Asset) -> Response:
    if is_partial():
        return _tab(asset, oob=True, changed=True)
    return redirect(url_for("relationships.tab", asset_id=asset.id), 303)


@bp.route("/assets/<asset_id>/relationships/find")
@role_required(Role.viewer)
def find(asset_id: str) -> Response:
    """`Find asset` as you type: up to FIND_LIMIT live assets matching the text (the /assets
    search: name, host, aliases, database name, owner, tags), other than this one."""
    asset = asset_service.get(db.session, asset_id)
    matches: list[Asset] = []
    more, error = False, None
    try:
        text = _typed(request.args.get("find", ""))
    except ValidationFailed as exc:  # the text typed, or another parameter, refused by the request
        text, error = "", exc.errors.get("find") or next(iter(exc.errors.values()))
    if text:
        query = asset_search.AssetQuery(q=text, sort="name", limit=FIND_LIMIT + 1)
        found = asset_search.list_assets(db.session, query, with_total=False)
        matches = [a for a in found.items if a.id != asset.id]
        more = len(matches) > FIND_LIMIT or found.next_cursor is not None
        matches = matches[:FIND_LIMIT]
    # a fragment for the form, never a page of its own
    body = render_block("relationships/tab.html", "find_results", asset=asset, matches=matches,
                        more=more, find=text, find_error=error)
    return make_response(body, 422 if error else 200)


@bp.route("/assets/<asset_id>/graph.json")
@role_required(Role.viewer)
def graph_json(asset_id: str) -> Response:
    """The asset's neighbourhood for the drawn graph (`?direction=up|down|both&depth=1..5`)."""
    asset = asset_service.get(db.session, asset_id)
    try:
        view = _graph_view()
        body = relationships.graph_json(db.session, asset.id, direction=view.direction,  # type: ignore[arg-type]
                                        depth=view.depth)
    except DomainError as exc:
        errors = exc.errors if isinstance(exc, ValidationFailed) else None
        return problem(exc.status, exc.title, exc.message, errors)
    response = Response(body, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


# --- every relationship -------------------------------------------------------------------------

@dataclass
class ListFilter:
    """`/relationships`' filters as the URL holds them (`services/listing`)."""

    kind: RelationshipKind | None = listing.arg(listing.Choice(RelationshipKind))
    q: str = listing.arg(listing.Search(), default="")
    origin: str | None = listing.arg(listing.Choice(ORIGINS, message="Choose manual or discovered."))
    after: str | None = listing.arg(listing.Raw())  # checked by the service (`cursor`)

    @property
    def narrowed(self) -> bool:
        return bool(self.kind or self.q or self.origin)


@bp.route("/relationships")
@role_required(Role.viewer)
def index() -> Response:
    return _list()


def _list(new: NewLink | None = None, new_errors: dict[str, str] | None = None,
          status: int = 200) -> Response:
    try:
        f = listing.parse(ListFilter, request.args)
        page = relationships.listing(db.session, kind=f.kind, q=f.q or None, origin=f.origin,  # type: ignore[arg-type]
                                     after=f.after, limit=PER_PAGE)
        errors: dict[str, str] = {}
    except ValidationFailed as exc:
        f, page, errors = ListFilter(q=_typed(request.args.get("q", ""))), None, exc.errors
        if "cursor" in errors:  # the page link is the `after` argument
            errors["after"] = errors.pop("cursor")
    return render(
        "relationships/index.html", "add" if new is not None else "results",
        status=422 if errors else status,
        new=new or NewLink(), new_errors=new_errors or {},
        f=f, page=page, errors=errors, kinds=list(RelationshipKind), origins=ORIGINS,
        phrases=relationships.PHRASE,
        runs=imports.run_numbers(db.session, (rel.import_run_id for rel, _s, _t in page.items)) if page else {},
        next_cursor=page.next_cursor if page else None,
        list_args=_list_args(),
    )


@dataclass
class NewLink:
    """The Add relationship form of `/relationships`: both ends typed (a name or an id)."""

    source: str = ""
    kind: str = RelationshipKind.depends_on.value
    target: str = ""
    description: str = ""


@bp.route("/relationships", methods=["POST"])
@role_required(Role.analyst)
def create() -> Response:
    """Add a link between two assets named (or given by id) in the form."""
    form = NewLink(**{k: request.form.get(k, "") for k in ("source", "kind", "target", "description")})
    errors: dict[str, str] = {}
    ends: dict[str, object] = {}
    for end in ("source", "target"):
        try:
            ends[end] = relationships.asset_named(db.session, getattr(form, end), end)
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if not errors:
        try:
            rel = relationships.create(db.session, current_actor(), source_id=ends["source"],
                                       target_id=ends["target"], kind=form.kind or None,
                                       description=form.description)
        except ValidationFailed as exc:
            errors = {("source" if k == "source_id" else "target" if k == "target_id" else k): v
                      for k, v in exc.errors.items()}
        except InvalidState as exc:
            errors = {"form": exc.message}
        else:
            source, target = _ends(rel)
            flash(f"Added: {relationships.describe(RelationshipKind(rel.kind), source.name, target.name)}.",
                  "success")
            if is_partial():  # the whole list changed: the browser loads it again
                response = Response(status=204)
                response.headers["HX-Redirect"] = url_for("relationships.index")
                return response
            return redirect(url_for("relationships.index"), 303)
    return _list(new=form, new_errors=errors, status=409 if "form" in errors else 422)


@bp.route("/relationships/asset-names")
@role_required(Role.viewer)
def asset_names() -> Response:
    """Suggestions for the Add relationship form's asset fields (`<option>`s of a datalist)."""
    text = _typed(request.args.get("source") or request.args.get("target") or "")
    names: list[Asset] = []
    if len(text) >= 2:
        query = asset_search.AssetQuery(q=text, sort="name", limit=FIND_LIMIT)
        names = asset_search.list_assets(db.session, query, with_total=False).items
    return make_response(render_block("relationships/index.html", "asset_options", assets=names))


def _list_args() -> dict[str, str]:
    """The list's own query arguments (only these: url_for reads `_scheme` and the like as
    instructions, not as query arguments)."""
    return {k: v for k in LIST_ARGS if (v := request.args.get(k))}


@bp.route("/relationships/<relationship_id>/delete", methods=["POST"])
@role_required(Role.analyst)
def delete(relationship_id: str) -> Response:
    """Remove a link from the list; back to the list as it was filtered."""
    _delete(relationships.get(db.session, relationship_id))
    target = url_for("relationships.index", **_list_args())
    if is_partial():
        response = Response(status=204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, 303)
