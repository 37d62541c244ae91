"""`/tags`: every tag with its asset count and colour; analysts set a tag's colour."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from webapp.assets import bp
from webapp.extensions import db
from webapp.models import Role
from webapp.services import tags as tag_service
from webapp.services.errors import ValidationFailed
from webapp.web.htmx import render
from webapp.web.session import current_actor, role_required


@bp.route("/tags")
@role_required(Role.viewer)
def tags() -> Response:
    return _page()


def _page(errors: dict[str, str] | None = None, status: int = 200) -> Response:
    return render("assets/tags.html", "content", status=status, rows=tag_service.list_tags(db.session),
                  palette=list(tag_service.PALETTE), errors=errors or {})


@bp.route("/tags/<name>/colour", methods=["POST"])
@role_required(Role.analyst)
def set_tag_colour(name: str) -> Response:
    try:
        tag = tag_service.set_colour(db.session, current_actor(), name, request.form.get("colour", ""))
    except ValidationFailed as exc:
        return _page(errors=exc.errors, status=422)
    flash(f"Tag “{tag.name}” is {tag_service.colour_name(tag)} now.", "success")
    return redirect(url_for("assets.tags"), 303)
