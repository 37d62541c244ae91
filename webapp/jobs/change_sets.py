"""The change set job kind: apply a queued bulk action or undo (`services.change_sets.execute`)
in batches, each batch committing its assets with their audit events.

    change_set = change_sets.apply(session, actor, change_set.id)
    if change_sets.runs_inline(change_set):
        change_sets.execute(session, change_set.id)     # small: in the request
    else:
        jobs.change_sets.dispatch(change_set)           # RQ (job id = change set id), else a thread

The RQ job id is the change set's id, so it is never queued twice; a second delivery finds it
claimed or finished and does nothing. Both runners are watched through the `ChangeSet` row.
"""

from __future__ import annotations

from flask import Flask, current_app

from webapp.extensions import db
from webapp.jobs import runner
from webapp.models import ChangeSet
from webapp.services import change_sets as change_set_service

KIND = "change_set"
QUEUE = "change_sets"
REDIS_UNAVAILABLE = (
    "The job queue (Redis) cannot be reached, so this change runs inside the web server "
    "instead. It will finish unless this server stops; batches applied by then stay, and can "
    "be undone."
)


def _reap(session) -> int:  # type: ignore[no-untyped-def]
    return change_set_service.reap_stale(
        session, int(current_app.config.get("BULK_STALE_SECONDS") or change_set_service.STALE_SECONDS))


@runner.register(
    KIND, queue=QUEUE, timeout_config="BULK_JOB_TIMEOUT", fallback_notice=REDIS_UNAVAILABLE,
    reap=_reap,
)
def run(change_set_id: str, *, runner: str) -> str:
    """Apply the change set in the current app; its final status."""
    batch_size = int(current_app.config.get("BULK_BATCH_SIZE") or change_set_service.BATCH_SIZE)
    return change_set_service.execute(db.session, change_set_id, runner=runner,
                                      batch_size=batch_size).status.value


def dispatch(change_set: ChangeSet) -> runner.Dispatch:
    """Hand a queued (committed) change set to a runner: RQ when Redis answers, else a thread
    of this process (the returned notice says so)."""
    return runner.dispatch(KIND, str(change_set.id), job_id=str(change_set.id),
                           description=f"{change_set.label}: {change_set.total} assets")


def start_thread(app: Flask, change_set_id: object) -> object:
    """Run it on a thread of this process whatever `REDIS_URL` says."""
    return runner.run_in_thread(app, KIND, str(change_set_id), job_id=str(change_set_id))
