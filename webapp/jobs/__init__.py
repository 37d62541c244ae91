"""Background jobs (SPEC §2): RQ when `REDIS_URL` is set and Redis answers, a thread of the web
process otherwise.

    from webapp import jobs
    started = jobs.imports.dispatch(run)     # a typed helper per job kind
    started = jobs.dispatch("import", str(run.id), job_id=str(run.id))   # the generic form
    started.runner, started.notice           # "rq" | "thread"; a notice when Redis was down

- `runner`: the registry of job kinds, `dispatch`, the RQ and thread runners
- `worker`: `work` (`flask worker`, one app per process) and `perform`, the RQ job
- one module per job kind: `imports`, `change_sets` (bulk actions and their undo), `policy`
  (re-evaluating every asset's policy results), `outbox` (dispatching outbox events: a session
  listener kicks it after each commit that wrote some), `webhooks` (sending the deliveries a
  commit created)

Runs a dead runner left behind are reaped by the worker at its start, by the thread runner
before each job (there is no worker then), and by `flask maintenance` (cron). (The imports
pages and API still reap on GET as well, for now.)
"""

from __future__ import annotations

from webapp.jobs import imports

# isort: split
# registered after imports, so a worker takes import jobs first (it serves queues in order)
from webapp.jobs import change_sets, outbox, policy, scheduled, webhooks
from webapp.jobs.imports import QUEUE, REDIS_UNAVAILABLE, run_import_job
from webapp.jobs.runner import (
    FAILURE_TTL,
    RESULT_TTL,
    Dispatch,
    UnknownJobKind,
    dispatch,
    redis_connection,
    register,
    wait_for_threads,
)
from webapp.jobs.worker import work

__all__ = [
    "FAILURE_TTL",
    "QUEUE",
    "REDIS_UNAVAILABLE",
    "RESULT_TTL",
    "Dispatch",
    "UnknownJobKind",
    "change_sets",
    "dispatch",
    "imports",
    "outbox",
    "policy",
    "redis_connection",
    "register",
    "run_import_job",
    "scheduled",
    "wait_for_threads",
    "webhooks",
    "work",
]
