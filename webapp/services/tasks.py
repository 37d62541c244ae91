"""Task runs (SPEC §13): the record of a background task's run — queued, claimed, its progress
and heartbeat, and how it ended — that the pages read whichever runner does the work.

    run = tasks.queue(session, "policy_evaluate", trigger="parameter change", actor=actor)
    tasks.claim(session, run.id)               # queued -> running; None if someone else has it
    tasks.progress(session, run.id, done, total)
    tasks.finish(session, run.id, result={...}) # or tasks.fail(session, run.id, "why")
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from webapp.models import EventSeverity, Role, TaskRun, TaskStatus
from webapp.models.base import utcnow
from webapp.services import outbox
from webapp.services.actor import Actor

STALE_SECONDS = 300  # a running task whose heartbeat is older is dead (its runner stopped)
KEEP_DAYS = 30  # finished runs older than this are pruned (each task's latest stays)


def queue(session: Session, task: str, *, trigger: str, actor: Actor | None = None) -> TaskRun:
    """A queued run of `task`, committed. An already queued or running run of the same task is
    returned instead: one full re-evaluation at a time is enough."""
    active = latest(session, task)
    if active is not None and not active.status.finished:
        return active
    run = TaskRun(id=uuid.uuid4(), task=task, status=TaskStatus.queued, trigger=trigger[:300],
                  actor_label=(actor.label if actor else "system")[:300], result={})
    session.add(run)
    session.commit()
    return run


def latest(session: Session, task: str) -> TaskRun | None:
    return session.scalars(select(TaskRun).where(TaskRun.task == task)
                           .order_by(TaskRun.created_at.desc()).limit(1)).first()


def claim(session: Session, run_id: uuid.UUID) -> bool:
    now = utcnow()
    claimed = session.execute(
        update(TaskRun).where(TaskRun.id == run_id, TaskRun.status == TaskStatus.queued)
        .values(status=TaskStatus.running, started_at=now, heartbeat_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return bool(claimed)


def progress(session: Session, run_id: uuid.UUID, done: int, total: int) -> None:
    """Move the bar and the heartbeat; committed on its own (the caller's batch is committed)."""
    session.execute(update(TaskRun).where(TaskRun.id == run_id)
                    .values(processed=done, total=total, heartbeat_at=utcnow())
                    .execution_options(synchronize_session=False))
    session.commit()


def finish(session: Session, run_id: uuid.UUID, result: dict[str, Any] | None = None) -> None:
    _end(session, run_id, TaskStatus.succeeded, result=result or {})


def fail(session: Session, run_id: uuid.UUID, error: str) -> None:
    """End the run failed, with a `task_failed` outbox event for admins in the same commit
    (whatever the failing work had added is rolled back first)."""
    session.rollback()
    task = session.scalar(select(TaskRun.task).where(TaskRun.id == run_id))
    if task is not None:
        _failed_event(session, task, run_id, error)
    _end(session, run_id, TaskStatus.failed, error=error[:2000])


def _failed_event(session: Session, task: str, run_id: uuid.UUID, error: str) -> None:
    outbox.emit(session, "task_failed", subject=f"Task {task} failed: {error}"[:300],
                severity=EventSeverity.high, body=error, link="/admin/tasks",
                payload={"task": task, "run_id": str(run_id), "error": error[:2000]},
                min_role=Role.admin)


def _end(session: Session, run_id: uuid.UUID, status: TaskStatus, **values: Any) -> None:
    now = utcnow()
    session.execute(update(TaskRun).where(TaskRun.id == run_id)
                    .values(status=status, finished_at=now, heartbeat_at=now, **values)
                    .execution_options(synchronize_session=False))
    session.commit()


def reap_stale(session: Session, stale_seconds: int = STALE_SECONDS) -> int:
    """Mark failed the running tasks whose runner stopped (no heartbeat for `stale_seconds`)."""
    cutoff = utcnow() - timedelta(seconds=stale_seconds)
    error = "The task stopped without finishing (its worker or web server stopped)."
    reaped = session.execute(
        update(TaskRun).where(TaskRun.status == TaskStatus.running, TaskRun.heartbeat_at < cutoff)
        .values(status=TaskStatus.failed, finished_at=utcnow(), error=error)
        .returning(TaskRun.id, TaskRun.task)
        .execution_options(synchronize_session=False)
    ).all()
    for run_id, task in reaped:
        _failed_event(session, task, run_id, error)
    session.commit()
    return len(reaped)


def prune(session: Session, keep_days: int = KEEP_DAYS) -> int:
    """Delete finished runs older than `keep_days`, keeping each task's latest run (the admin
    page's "last run"). A scheduled task running every minute adds 1,440 runs a day."""
    cutoff = utcnow() - timedelta(days=keep_days)
    newest = (select(TaskRun.task, func.max(TaskRun.created_at).label("created_at"))
              .group_by(TaskRun.task).subquery())
    keep = select(TaskRun.id).join(newest, (TaskRun.task == newest.c.task)
                                   & (TaskRun.created_at == newest.c.created_at))
    pruned = session.execute(
        delete(TaskRun).where(TaskRun.created_at < cutoff,
                              TaskRun.status.in_([TaskStatus.succeeded, TaskStatus.failed]),
                              TaskRun.id.not_in(keep))
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return pruned or 0
