"""The scheduled-task job kind (SPEC §13): run one scheduled task and record it in `task_runs`.

    jobs.scheduled.dispatch(run)              # Run now: RQ (job id = run id), else a thread
    perform("scheduled_task", "stale_scan")   # what RQ's cron scheduler enqueues: the job
                                              # starts the run itself, or skips it when the
                                              # task's previous run is still going
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from flask import current_app

from webapp.extensions import db
from webapp.jobs import runner
from webapp.models import TaskRun
from webapp.services import scheduled_tasks, tasks

log = logging.getLogger(__name__)

KIND = "scheduled_task"
QUEUE = "scheduled"
TIMEOUT = 2 * 60 * 60  # the longest task (a full policy re-evaluation) on a large inventory


def _reap(session) -> int:  # type: ignore[no-untyped-def]
    return tasks.reap_stale(session)


@runner.register(KIND, queue=QUEUE, default_timeout=TIMEOUT, reap=_reap)
def run(name: str, run_id: str | None = None, now: str | None = None, *, runner: str) -> str:
    """Run task `name`: the queued run `run_id`, or (from the cron schedule) a new run unless
    one is still queued or running. Returns the outcome, kept by RQ as the job's result."""
    if run_id is None:
        started = scheduled_tasks.start(db.session, name, trigger="schedule")
        if started is None:
            return f"skipped: the previous run of {name} is still going"
        run_id = str(started.id)
    moment = datetime.fromisoformat(now) if now else None
    return scheduled_tasks.execute(db.session, uuid.UUID(run_id), now=moment,
                                   config=current_app.config)


def dispatch(run: TaskRun, *, now: datetime | None = None) -> runner.Dispatch:
    """Run the queued `run` on RQ (job id = run id), or on a thread of this process."""
    args = [run.task, str(run.id)] + ([now.isoformat()] if now else [])
    return runner.dispatch(KIND, *args, job_id=str(run.id),
                           description=f"scheduled task {run.task}: {run.trigger}")
