"""Scheduled tasks (SPEC §13): the registry, their schedules, starting and running one.

    run = scheduled_tasks.start(session, "stale_scan", trigger="schedule")   # None: still running
    scheduled_tasks.execute(session, run.id, now=now, config=app.config)     # "succeeded" | …

Each task is a function `(session, RunContext) -> message`. Every run is a `task_runs` row
(services/tasks.py): queued, claimed, ended succeeded with its message or failed with its error
and a `task_failed` outbox event in the same commit. A task with a run queued or running is not
started again: a run that overruns its next start makes that start a skip, not a second run.

Who calls them: the scheduler (webapp/jobs/scheduler.py: RQ's cron scheduler, or a thread of the
web process), `Run now` on /admin/tasks and `POST /api/v1/tasks/{name}/run`. Schedules are cron
expressions in UTC, kept in the `task_schedules` setting where an admin changed them.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter
from flask import current_app, has_app_context
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from webapp.models import Asset, EventSeverity, Role, TaskRun, TaskStatus
from webapp.models.base import utcnow
from webapp.services import (
    change_sets,
    imports,
    maintenance,
    outbox,
    policy_results,
    policy_runs,
    settings,
    tasks,
)
from webapp.services.actor import Actor
from webapp.services.asset_search import is_stale
from webapp.services.errors import InvalidState, NotFound, ValidationFailed

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 60  # a running task's heartbeat, well inside tasks.STALE_SECONDS
QUEUED_STALE = timedelta(hours=1)  # a run queued this long was lost (no worker took its job)


@dataclass
class RunContext:
    """What a task's function gets besides the session."""

    run_id: uuid.UUID
    now: datetime  # the run's moment (the scheduler's tick; tests pass their own)
    config: Mapping[str, Any]  # the app's settings a task reads (IMPORT_STALE_SECONDS, …)
    result: dict[str, Any] = field(default_factory=dict)  # kept on the run beside the message


TaskFunc = Callable[[Session, RunContext], str]


class TaskFailed(RuntimeError):
    """A task's own failure, said for a person: the run records the message as it is (other
    exceptions are recorded with their type)."""


@dataclass(frozen=True)
class ScheduledTask:
    name: str
    title: str
    description: str
    schedule: str  # the default cron schedule (UTC)
    func: TaskFunc
    # the function claims, heartbeats and ends its run itself (the policy re-evaluation's own
    # path, with progress); otherwise execute() does
    manages_run: bool = False
    # a setting of the app's config without which the task is off (backup: BACKUP_DIR)
    requires: str | None = None

    def off_because(self, config: Mapping[str, Any]) -> str | None:
        """Why the task does not run here (None: it does)."""
        if self.requires and not config.get(self.requires):
            return f"Off: {self.requires} is not set."
        return None


TASKS: dict[str, ScheduledTask] = {}


def register(name: str, *, title: str, description: str, schedule: str,
             manages_run: bool = False, requires: str | None = None) -> Callable[[TaskFunc], TaskFunc]:
    def decorate(fn: TaskFunc) -> TaskFunc:
        if settings.cron_error(schedule) is not None:
            raise ValueError(f"task {name!r}: bad default schedule {schedule!r}")
        TASKS[name] = ScheduledTask(name, title, description, schedule, fn, manages_run, requires)
        return fn

    return decorate


def get(name: str) -> ScheduledTask:
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise NotFound(f"There is no scheduled task called {str(name)[:64]!r}.") from None


# --- the tasks ----------------------------------------------------------------------------------

@register("maintenance", title="Maintenance", schedule="30 2 * * *",
          description="Purge assets in the trash past their retention (each purge audited), "
                      "discard bulk previews nobody applied, prune task runs older than 30 days, "
                      "finished webhook deliveries older than 30 days and notifications read "
                      "more than 90 days ago.")
def _maintenance(session: Session, ctx: RunContext) -> str:
    result = maintenance.run(session, Actor.system("scheduler"), import_stale_seconds=int(
        ctx.config.get("IMPORT_STALE_SECONDS") or imports.STALE_SECONDS))
    ctx.result.update(purged=result.purged, stale=result.stale, reaped=result.reaped,
                      task_runs_pruned=result.task_runs_pruned,
                      deliveries_pruned=result.deliveries_pruned,
                      notifications_pruned=result.notifications_pruned)
    return (f"Purged {result.purged} asset(s) from the trash; {result.stale} active asset(s) are "
            f"stale; {result.reaped} stopped run(s) marked failed; "
            f"{result.task_runs_pruned} old task run(s), {result.deliveries_pruned} webhook "
            f"deliveries and {result.notifications_pruned} read notification(s) pruned.")


@register("stale_scan", title="Stale scan", schedule="15 * * * *",
          description="Announce the assets that turned stale since the previous scan (missed by "
                      "covering scans for as many days as Settings say): one notification "
                      "for analysts and up, linking to the stale assets.")
def _stale_scan(session: Session, ctx: RunContext) -> str:
    return stale_scan(session, ctx)


def stale_scan(session: Session, ctx: RunContext) -> str:
    """Count the live assets whose `missed_since` crossed the stale cutoff since the previous
    successful scan's cutoff (every stale asset on the first scan) and raise one `assets_stale`
    event for them, uncommitted: it commits with the run's end. An asset seen again and then
    stale again is announced again; one never re-seen is announced once."""
    days = int(settings.get(session, "stale_after_days"))
    cutoff = ctx.now - timedelta(days=days)
    previous = session.scalars(
        select(TaskRun.result).where(TaskRun.task == "stale_scan", TaskRun.id != ctx.run_id,
                                     TaskRun.status == TaskStatus.succeeded)
        .order_by(TaskRun.created_at.desc()).limit(1)).first()
    conditions = [Asset.deleted_at.is_(None), is_stale(Asset, cutoff)]
    if previous and previous.get("cutoff"):
        conditions.append(Asset.missed_since >= datetime.fromisoformat(previous["cutoff"]))
    count = session.scalar(select(func.count()).select_from(Asset).where(*conditions)) or 0
    ctx.result.update(cutoff=cutoff.isoformat(), newly_stale=count)
    if not count:
        return "No asset turned stale since the previous scan."
    noun = "asset" if count == 1 else "assets"
    outbox.emit(session, "assets_stale", subject=f"{count} {noun} turned stale",
                severity=EventSeverity.medium, link="/assets?stale=true",
                body=f"{count} {noun} missed by scans that covered them for {days} days.",
                payload={"count": count, "stale_after_days": days, "cutoff": cutoff.isoformat()},
                min_role=Role.analyst, dedupe_key=f"assets_stale:{cutoff.isoformat()}")
    return f"{count} {noun} turned stale; announced."


@register("policy_evaluate", title="Policy re-evaluation", schedule="0 3 * * *", manages_run=True,
          description="Re-evaluate every asset's policy results as time passes (backup age, "
                      "staleness, exceptions expiring), with progress on /policy, and take "
                      "today's posture snapshot.")
def _policy_evaluate(session: Session, ctx: RunContext) -> str:
    batch_size = int(ctx.config.get("POLICY_BATCH_SIZE") or policy_results.BATCH_SIZE)
    policy_runs.execute(session, ctx.run_id, batch_size=batch_size)
    return ""


@register("digests", title="Digest e-mails", schedule="0 7 * * *",
          description="E-mail each person who chose a daily digest the notifications of the "
                      "past day (when SMTP_URL is set).")
def _digests(session: Session, ctx: RunContext) -> str:
    from webapp.services import notifications  # written alongside; resolved when run

    sent = notifications.send_digests(session, now=ctx.now)
    ctx.result["sent"] = sent
    return f"{sent} digest(s) sent."


@register("import_reaper", title="Import reaper", schedule="*/5 * * * *",
          description="Mark failed the imports, bulk changes and tasks whose worker stopped "
                      "(no heartbeat), so they can be retried.")
def _import_reaper(session: Session, ctx: RunContext) -> str:
    stale_seconds = int(ctx.config.get("IMPORT_STALE_SECONDS") or imports.STALE_SECONDS)
    runs = imports.reap_stale(session, now=ctx.now, stale_seconds=stale_seconds)
    sets = change_sets.reap_stale(session)
    task_runs = tasks.reap_stale(session)
    ctx.result.update(imports=runs, change_sets=sets, task_runs=task_runs)
    return (f"{runs} import(s), {sets} bulk change(s) and {task_runs} task run(s) whose worker "
            "stopped marked failed.")


@register("deliveries", title="Deliveries", schedule="* * * * *",
          description="Deliver what the outbox holds: notifications and e-mails, then webhook "
                      "deliveries due (retries with backoff). The sweep that makes Redis or a "
                      "receiver being down only delay events.")
def _deliveries(session: Session, ctx: RunContext) -> str:
    from webapp.services import dispatch, webhooks  # written alongside; resolved when run

    dispatched = dispatch.dispatch_pending(session, now=ctx.now)
    sent = webhooks.send_due(session, now=ctx.now)
    ctx.result.update(dispatched=dispatched, webhook_deliveries=sent)
    return f"{dispatched} event(s) dispatched; {sent} webhook delivery attempt(s)."


@register("backup", title="Backup", schedule="0 1 * * *", requires="BACKUP_DIR",
          description="Dump the whole inventory into BACKUP_DIR (inventory-<UTC time>.jsonl.gz, "
                      "secrets still encrypted) and keep the newest BACKUP_KEEP. Off unless "
                      "BACKUP_DIR is set. A failed backup notifies admins.")
def _backup(session: Session, ctx: RunContext) -> str:
    from webapp.services import backups  # imports the dump machinery only when it runs

    try:
        made = backups.run_backup(session, backup_dir=ctx.config.get("BACKUP_DIR"),
                                  keep=ctx.config.get("BACKUP_KEEP"), now=ctx.now)
    except backups.BackupFailed as exc:
        raise TaskFailed(str(exc)) from None  # the run's message is the reason, as it stands
    ctx.result.update(path=str(made.path), size=made.size, rows=made.rows,
                      removed=len(made.removed))
    return made.message


# --- schedules ----------------------------------------------------------------------------------

def schedules(session: Session, *, config: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Every task's schedule in force: an admin's setting, else the task's default. Given the
    app's config, only the tasks that are on (the scheduler's view: no backup without
    BACKUP_DIR)."""
    stored = settings.get(session, "task_schedules") or {}
    return {name: stored.get(name) or task.schedule for name, task in TASKS.items()
            if config is None or task.off_because(config) is None}


def next_run(schedule: str, after: datetime) -> datetime:
    """The first moment strictly after `after` that `schedule` (cron, UTC) names."""
    return croniter(schedule, after).get_next(datetime)


def update_schedules(session: Session, actor: Actor, values: Mapping[str, str]) -> dict[str, Any]:
    """Change task schedules (audited `settings_change`); 422 naming `task_schedules.<task>`
    for an unknown task or a schedule croniter refuses. A task set back to its default stops
    being stored."""
    unknown = {f"task_schedules.{name}": "There is no scheduled task by this name."
               for name in values if name not in TASKS}
    if unknown:
        raise ValidationFailed(unknown)
    merged = {**(settings.get(session, "task_schedules") or {}), **values}
    kept = {name: cron for name, cron in merged.items()
            if name in TASKS and (not isinstance(cron, str) or " ".join(cron.split()) != TASKS[name].schedule)}
    return settings.update(session, actor, {"task_schedules": kept})


# --- runs ---------------------------------------------------------------------------------------

def active(session: Session, name: str) -> TaskRun | None:
    """The run of task `name` queued or running, if any."""
    return session.scalars(select(TaskRun).where(
        TaskRun.task == name, TaskRun.status.in_([TaskStatus.queued, TaskStatus.running]))
        .order_by(TaskRun.created_at.desc()).limit(1)).first()


def start(session: Session, name: str, *, trigger: str, actor: Actor | None = None,
          now: datetime | None = None) -> TaskRun | None:
    """A queued run of task `name`, committed; None when a run of it is still queued or running
    (it is not started twice)."""
    task = get(name)
    now = now or utcnow()
    running = active(session, task.name)
    if (running is not None and running.status is TaskStatus.queued
            and running.created_at < now - QUEUED_STALE):
        tasks.fail(session, running.id, "No worker picked this run up within an hour "
                   "(is `flask worker` running?); a new run was started instead.")
        running = None
    if running is not None:
        log.info("Scheduled task %s not started (%s): its run %s is still %s since %s", task.name,
                 trigger, running.id, running.status.value, running.started_at or running.created_at)
        return None
    run = TaskRun(id=uuid.uuid4(), task=task.name, status=TaskStatus.queued, trigger=trigger[:300],
                  actor_label=(actor.label if actor else "scheduler")[:300], result={},
                  created_at=now)
    session.add(run)
    session.commit()
    return run


def run_now(session: Session, name: str, actor: Actor) -> TaskRun:
    """`Run now` (page and API): a queued run, or 409 when one is already queued or running."""
    off = get(name).off_because(current_app.config)
    if off is not None:
        raise InvalidState(f"{get(name).title} cannot run here. {off}")
    run = start(session, name, trigger=f"Run now by {actor.label}", actor=actor)
    if run is None:
        running = active(session, name)
        since = running.started_at or running.created_at if running else None
        raise InvalidState(f"{get(name).title} is already {running.status.value if running else 'running'}"
                           + (f" (since {since:%Y-%m-%d %H:%M} UTC)." if since else "."))
    return run


def execute(session: Session, run_id: uuid.UUID, *, now: datetime | None = None,
            config: Mapping[str, Any] | None = None) -> str:
    """Run the queued run `run_id`: claim it, call its task, end it. Returns the run's outcome:
    "succeeded", "failed" (the run says why; a `task_failed` event was raised with it) or
    "skipped" (another runner claimed it first)."""
    run = session.get(TaskRun, run_id)
    if run is None:
        raise NotFound("No such task run.")
    task = get(run.task)
    ctx = RunContext(run_id=run_id, now=now or utcnow(), config=config or {})
    if not task.manages_run and not tasks.claim(session, run_id):
        return "skipped"
    try:
        with _Heartbeat(session, run_id, enabled=not task.manages_run):
            message = task.func(session, ctx)
    except Exception as exc:
        log.exception("Scheduled task %s (run %s) failed", task.name, run_id)
        if not task.manages_run:  # a task managing its run has failed it already
            tasks.fail(session, run_id, str(exc) if isinstance(exc, TaskFailed)
                       else f"{type(exc).__name__}: {exc}")
        return "failed"
    if task.manages_run:
        session.expire_all()
        ended = session.get(TaskRun, run_id)
        return ended.status.value if ended and ended.status.finished else "skipped"
    tasks.finish(session, run_id, {"message": message, **ctx.result})
    return "succeeded"


class _Heartbeat:
    """Keep a run's heartbeat fresh on a connection of its own while its task works (a long
    purge is not a dead runner), so the reapers leave it alone."""

    def __init__(self, session: Session, run_id: uuid.UUID, *, enabled: bool) -> None:
        self.engine = session.get_bind()
        self.run_id = run_id
        self.enabled = enabled
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> _Heartbeat:
        if self.enabled:
            self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{self.run_id}",
                                           daemon=True)
            self.thread.start()
        return self

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_SECONDS):
            try:
                with self.engine.begin() as conn:  # type: ignore[union-attr]
                    conn.execute(update(TaskRun).where(TaskRun.id == self.run_id,
                                                       TaskRun.status == TaskStatus.running)
                                 .values(heartbeat_at=utcnow()))
            except Exception:  # the run's end says what happened; a missed beat is not fatal
                log.warning("Heartbeat of task run %s failed", self.run_id, exc_info=True)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(5)


# --- what the page and the API show -------------------------------------------------------------

@dataclass(frozen=True)
class TaskView:
    task: ScheduledTask
    schedule: str
    default: bool  # the schedule is the task's default
    next_run: datetime
    last_run: TaskRun | None
    off: str | None = None  # why it does not run here (a setting it needs is not set)

    @property
    def duration(self) -> timedelta | None:
        run = self.last_run
        if run is None or run.started_at is None or run.finished_at is None:
            return None
        return run.finished_at - run.started_at

    @property
    def message(self) -> str | None:
        return message(self.last_run) if self.last_run else None


def message(run: TaskRun) -> str:
    """What a person reads about a run's outcome."""
    if run.status is TaskStatus.failed:
        return run.error or "Failed."
    if not run.status.finished:
        return f"{run.status.value.capitalize()}." + (
            f" {run.processed:,} of {run.total:,} done." if run.total else "")
    result = run.result or {}
    if result.get("message"):
        return str(result["message"])
    return "; ".join(f"{key.replace('_', ' ')}: {value}" for key, value in result.items()) or "Done."


def overview(session: Session, now: datetime | None = None) -> list[TaskView]:
    """Every task with its schedule, next run and last run (one query for the last runs)."""
    now = now or utcnow()
    newest = (select(TaskRun.task, func.max(TaskRun.created_at).label("created_at"))
              .where(TaskRun.task.in_(TASKS)).group_by(TaskRun.task).subquery())
    last = {run.task: run for run in session.scalars(
        select(TaskRun).join(newest, (TaskRun.task == newest.c.task)
                             & (TaskRun.created_at == newest.c.created_at)))}
    in_force = schedules(session)
    config = current_app.config if has_app_context() else {}
    return [TaskView(task, in_force[name], in_force[name] == task.schedule,
                     next_run(in_force[name], now), last.get(name), task.off_because(config))
            for name, task in TASKS.items()]


def view(session: Session, name: str, now: datetime | None = None) -> TaskView:
    """One task as the pages show it (the dashboard's last backup): two queries."""
    task = get(name)
    schedule = schedules(session)[name]
    config = current_app.config if has_app_context() else {}
    return TaskView(task, schedule, schedule == task.schedule, next_run(schedule, now or utcnow()),
                    tasks.latest(session, name), task.off_because(config))


def last_started(session: Session) -> dict[str, datetime]:
    """When each task's latest run was created (the scheduler thread's "previous run")."""
    return dict(session.execute(  # type: ignore[arg-type]
        select(TaskRun.task, func.max(TaskRun.created_at)).where(TaskRun.task.in_(TASKS))
        .group_by(TaskRun.task)).all())
