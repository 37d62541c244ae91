"""The home page: counts of the inventory at a glance."""

from __future__ import annotations

from webapp.dashboard import bp
from webapp.extensions import db
from webapp.models import Role
from webapp.services import reports
from webapp.web.htmx import render
from webapp.web.session import role_required


@bp.route("/")
@role_required(Role.viewer)
def index():  # type: ignore[no-untyped-def]
    summary = reports.dashboard(db.session)
    return render("dashboard/index.html", "content", summary=summary)
