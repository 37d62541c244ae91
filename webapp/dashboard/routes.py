"""The home page (counts of the inventory at a glance) and the header search."""

from __future__ import annotations

from flask import request
from flask_login import current_user
from jinja2_fragments.flask import render_block

from webapp.dashboard import bp, panels
from webapp.extensions import db
from webapp.models import Role
from webapp.services import imports, policy_reports, quick_search, reports, scheduled_tasks
from webapp.web.htmx import is_partial, render
from webapp.web.session import role_required

RECENT_IMPORTS = 5
QUICK_TARGET = "quick-results"  # the list under the header's search box


@bp.route("/")
@role_required(Role.viewer)
def index():  # type: ignore[no-untyped-def]
    summary = reports.dashboard(db.session)
    recent_imports = imports.list_runs(db.session, limit=RECENT_IMPORTS)
    counts = policy_reports.cached_control_counts(db.session)
    policy = panels.policy_charts(policy_reports.frameworks(db.session, counts),
                                  policy_reports.most_failed(counts),
                                  policy_reports.trend(db.session))
    # admins see the last backup's time, size and outcome (SPEC §8)
    backup = scheduled_tasks.view(db.session, "backup") if current_user.role == Role.admin else None
    return render("dashboard/index.html", "content", summary=summary,
                  charts=panels.inventory_charts(summary), policy_charts=policy,
                  recent_imports=recent_imports, backup=backup)


@bp.route("/search")
@role_required(Role.viewer)
def search():  # type: ignore[no-untyped-def]
    """The header search: the grouped results under the box (htmx, `HX-Target: quick-results`)
    or, when the box is submitted without script, a page of its own."""
    text = request.args.get("q", "")
    found = quick_search.find(db.session, text, users=current_user.role == Role.admin)
    if is_partial() and request.headers.get("HX-Target") == QUICK_TARGET:
        return render_block("search/index.html", "quick", found=found)
    return render("search/index.html", "results", found=found)
