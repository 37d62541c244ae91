"""The policy job kind: re-evaluate every asset's policy results (a parameter changed, or time
passed), with progress on its task run (`services.policy_results.run_task`).

    run = tasks.queue(session, policy_results.TASK, trigger="…", actor=actor)
    jobs.policy.dispatch(run)        # RQ (job id = run id), else a thread of this process
"""

from __future__ import annotations

import uuid

from flask import current_app

from webapp.extensions import db
from webapp.jobs import runner
from webapp.models import TaskRun
from webapp.services import policy_results, policy_runs, tasks

KIND = "policy_evaluate"
QUEUE = "policy"


def _reap(session) -> int:  # type: ignore[no-untyped-def]
    return tasks.reap_stale(session)


@runner.register(KIND, queue=QUEUE, timeout_config="POLICY_JOB_TIMEOUT", reap=_reap)
def run(run_id: str, *, runner: str) -> str:
    batch_size = int(current_app.config.get("POLICY_BATCH_SIZE") or policy_results.BATCH_SIZE)
    return policy_runs.execute(db.session, uuid.UUID(run_id), batch_size=batch_size)


def dispatch(run: TaskRun) -> runner.Dispatch:
    return runner.dispatch(KIND, str(run.id), job_id=str(run.id),
                           description=f"policy re-evaluation: {run.trigger}")
