"""The home page: counts of the inventory at a glance."""

from __future__ import annotations

from webapp.dashboard import bp
from webapp.extensions import db
from webapp.models import Role
from webapp.services import imports, reports
from webapp.web.htmx import render
from webapp.web.session import role_required

RECENT_IMPORTS = 5


@bp.route("/")
@role_required(Role.viewer)
def index():  # type: ignore[no-untyped-def]
    summary = reports.dashboard(db.session)
    recent_imports = imports.list_runs(db.session, limit=RECENT_IMPORTS)
    return render("dashboard/index.html", "content", summary=summary, recent_imports=recent_imports)
