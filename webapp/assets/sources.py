"""`/assets/<id>/sources`: the asset's Sources tab (SPEC §5): per field, the current value,
which source set it and when, and every other source's last value."""

from __future__ import annotations

from werkzeug.wrappers import Response

from webapp.assets import bp
from webapp.extensions import db
from webapp.models import Role
from webapp.services import asset_sources
from webapp.services import assets as asset_service
from webapp.web.htmx import render
from webapp.web.session import role_required


@bp.route("/assets/<asset_id>/sources")
@role_required(Role.viewer)
def sources(asset_id: str) -> Response:
    asset = asset_service.get(db.session, asset_id)
    return render("assets/sources.html", "content", asset=asset, tab="sources",
                  report=asset_sources.sources_of(db.session, asset))
