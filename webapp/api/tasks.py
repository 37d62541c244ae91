"""/api/v1/tasks (SPEC §13): the scheduled tasks with their schedule, last and next run, and
`Run now`. Admin tokens only (a run changes data: Run now needs a read-write token)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from webapp import jobs
from webapp.api.auth import SECURITY, api_actor, token_required
from webapp.api.common import document_errors
from webapp.api.parsing import ApiBlueprint
from webapp.extensions import db
from webapp.models import Role, TaskRun, TaskStatus
from webapp.services import scheduled_tasks

blp = ApiBlueprint(
    "api_tasks", __name__, url_prefix="/api/v1",
    description="Scheduled tasks: maintenance, stale scan, policy re-evaluation, digests, the "
                "import reaper and deliveries. Admin tokens only.",
)


class TaskRunOut(Schema):
    class Meta:
        ordered = True

    id = fields.UUID()
    task = fields.String()
    status = fields.String(validate=validate.OneOf([s.value for s in TaskStatus]))
    trigger = fields.String(metadata={"description": "Why it ran: schedule, or Run now by whom."})
    actor_label = fields.String()
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    duration_seconds = fields.Float(allow_none=True)
    message = fields.String(metadata={"description": "What it did, or why it failed."})


class TaskOut(Schema):
    class Meta:
        ordered = True

    name = fields.String()
    title = fields.String()
    description = fields.String()
    schedule = fields.String(metadata={"description": "The cron schedule in force (UTC)."})
    default_schedule = fields.String()
    next_run = fields.DateTime(allow_none=True, metadata={
        "description": "When it runs next; null when it is off here (see `off`)."})
    off = fields.String(allow_none=True, metadata={
        "description": "Why the task does not run here (backup: BACKUP_DIR is not set); null "
                       "when it runs."})
    outcome = fields.String(allow_none=True, metadata={
        "description": "The last run's status (queued, running, succeeded, failed); null if "
                       "never run."})
    last_run = fields.Nested(TaskRunOut, allow_none=True)


class TaskList(Schema):
    items = fields.List(fields.Nested(TaskOut))


class RunStarted(Schema):
    class Meta:
        ordered = True

    run = fields.Nested(TaskRunOut)
    runner = fields.String(validate=validate.OneOf(["rq", "thread"]))
    notice = fields.String(allow_none=True)


def _run(run: TaskRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    duration = (run.finished_at - run.started_at).total_seconds() \
        if run.started_at and run.finished_at else None
    return {"id": run.id, "task": run.task, "status": run.status.value, "trigger": run.trigger,
            "actor_label": run.actor_label, "created_at": run.created_at,
            "started_at": run.started_at, "finished_at": run.finished_at,
            "duration_seconds": duration, "message": scheduled_tasks.message(run)}


@blp.route("/tasks", methods=["GET"])
@token_required(Role.admin)
@blp.doc(security=SECURITY)
@blp.response(200, TaskList)
@document_errors(blp, (401, 403))
def list_tasks() -> dict[str, Any]:
    """Every scheduled task: its schedule in force, next run, and last run with its outcome."""
    return {"items": [{
        "name": v.task.name, "title": v.task.title, "description": v.task.description,
        "schedule": v.schedule, "default_schedule": v.task.schedule,
        "next_run": None if v.off else v.next_run, "off": v.off,
        "outcome": v.last_run.status.value if v.last_run else None, "last_run": _run(v.last_run),
    } for v in scheduled_tasks.overview(db.session)]}


@blp.route("/tasks/<name>/run", methods=["POST"])
@token_required(Role.admin, write=True)
@blp.doc(security=SECURITY)
@blp.response(202, RunStarted)
@document_errors(blp, (401, 403, 404, 409))
def run_task(name: str) -> tuple[dict[str, Any], int]:
    """Run the task now (as `Run now` on /admin/tasks): a task run, queued for a worker or run
    on a thread of the server; poll `GET /api/v1/tasks` for its outcome. 404 for an unknown
    task; 409 while a run of it is queued or running."""
    scheduled_tasks.get(name)  # 404 before anything is written
    run = scheduled_tasks.run_now(db.session, name, api_actor())
    started = jobs.scheduled.dispatch(run)
    return {"run": _run(run), "runner": started.runner, "notice": started.notice}, 202
