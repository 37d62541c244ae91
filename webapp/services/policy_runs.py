"""The full policy re-evaluation as a task (SPEC §12): queued when an admin changes a parameter
and run daily as time passes (backup age, staleness, exceptions expiring), with progress.

    run = policy_runs.queue(session, actor, trigger="parameters changed")
    jobs.policy.dispatch(run)                  # the job calls execute(session, run.id)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy.orm import Session

from webapp.models import TaskRun
from webapp.services import policy_exceptions, policy_reports, policy_results, tasks
from webapp.services.actor import Actor

TASK = "policy_evaluate"


def queue(session: Session, actor: Actor | None, *, trigger: str) -> TaskRun:
    """A queued re-evaluation (or the one already queued or running)."""
    return tasks.queue(session, TASK, trigger=trigger, actor=actor)


def latest(session: Session) -> TaskRun | None:
    return tasks.latest(session, TASK)


def execute(session: Session, run_id: uuid.UUID, *, batch_size: int = policy_results.BATCH_SIZE,
            progress: Callable[[int, int], None] | None = None) -> str:
    """Claim the queued run, expire exceptions that ran out, re-evaluate every asset a batch at
    a time (progress on the run), write today's posture snapshot, and end the run. Returns its
    final status ("skipped" when another runner has it)."""
    if not tasks.claim(session, run_id):
        return "skipped"
    try:
        expired = policy_exceptions.expire(session)
        written = policy_results.evaluate_all(
            session, batch_size=batch_size,
            progress=lambda done, total: _progress(session, run_id, done, total, progress))
        snapshot = policy_reports.take_snapshot(session)
    except Exception as exc:  # the run says why; the runner logs the traceback
        tasks.fail(session, run_id, f"{type(exc).__name__}: {exc}")
        raise
    tasks.finish(session, run_id, {"results": written, "exceptions_expired": len(expired),
                                   "assets": snapshot.assets})
    return "succeeded"


def _progress(session: Session, run_id: uuid.UUID, done: int, total: int,
              also: Callable[[int, int], None] | None) -> None:
    tasks.progress(session, run_id, done, total)
    if also is not None:
        also(done, total)
