"""/admin/tasks (SPEC §13): each scheduled task with its schedule (editable), last run, next run
and `Run now`. Admin only."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from webapp import jobs
from webapp.admin import bp
from webapp.extensions import db
from webapp.models import Role
from webapp.services import scheduled_tasks
from webapp.services.errors import InvalidState, ValidationFailed
from webapp.web.htmx import render
from webapp.web.session import current_actor, role_required


def _page(*, status: int = 200, posted: dict[str, str] | None = None,
          errors: dict[str, str] | None = None) -> Response:
    return render("admin/tasks.html", "content", status=status,
                  tasks=scheduled_tasks.overview(db.session), posted=posted or {},
                  errors=errors or {})


@bp.route("/tasks", methods=["GET"])
@role_required(Role.admin)
def tasks() -> Response:
    return _page()


@bp.route("/tasks/schedules", methods=["POST"])
@role_required(Role.admin)
def task_schedules() -> Response:
    """Save the schedules (one cron field per task); audited `settings_change`."""
    posted = {name: request.form.get(f"schedule-{name}", "")
              for name in scheduled_tasks.TASKS if f"schedule-{name}" in request.form}
    try:
        changed = scheduled_tasks.update_schedules(db.session, current_actor(), posted)
    except ValidationFailed as exc:
        db.session.rollback()
        return _page(status=422, posted=posted, errors=exc.errors)
    flash("Schedules saved." if changed else "Schedules unchanged.", "success")
    return redirect(url_for("admin.tasks"), 303)


@bp.route("/tasks/<name>/run", methods=["POST"])
@role_required(Role.admin)
def run_task(name: str) -> Response:
    """`Run now`: a task run, handed to a worker (or a thread of this server)."""
    if name not in scheduled_tasks.TASKS:
        abort(404)
    try:
        run = scheduled_tasks.run_now(db.session, name, current_actor())
    except InvalidState as exc:
        flash(exc.message, "error")
        return redirect(url_for("admin.tasks"), 303)
    started = jobs.scheduled.dispatch(run)
    flash(f"{scheduled_tasks.get(name).title} started." + (f" {started.notice}" if started.notice else ""),
          "success")
    return redirect(url_for("admin.tasks"), 303)
