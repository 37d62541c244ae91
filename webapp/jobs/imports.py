"""The import job kind: run a queued `ImportRun` through `services.imports.execute`.

    run = imports.create_run(session, actor, data=raw, filename="scan.xml")
    jobs.imports.dispatch(run)    # RQ (job id = run id) when Redis answers, else a thread

The RQ job id is the run id, so a run is never queued twice; a second delivery finds the run
claimed or finished and does nothing. Either runner is watched the same way: the `ImportRun`
row (status, progress, heartbeat).
"""

from __future__ import annotations

from flask import Flask, current_app
from rq import Queue
from sqlalchemy.orm import Session

from webapp.extensions import db
from webapp.jobs import runner
from webapp.models import ImportRun
from webapp.services import imports as import_service

KIND = "import"
QUEUE = "imports"  # the queue deployed workers listen on: keep the name
REDIS_UNAVAILABLE = (
    "The job queue (Redis) cannot be reached, so this import runs inside the web server "
    "instead. It will finish unless this server stops; then run it again."
)


def reap(session: Session) -> int:
    """Mark failed the runs whose worker died (no heartbeat for `IMPORT_STALE_SECONDS`)."""
    return import_service.reap_stale(session, stale_seconds=stale_seconds())


def stale_seconds() -> int:
    return int(current_app.config["IMPORT_STALE_SECONDS"])


@runner.register(
    KIND, queue=QUEUE, timeout_config="IMPORT_JOB_TIMEOUT", fallback_notice=REDIS_UNAVAILABLE,
    reap=reap,
)
def run(run_id: str, *, runner: str) -> str:
    """Execute the run in the current app; its final status."""
    batch_size = int(current_app.config["IMPORT_BATCH_SIZE"])
    return import_service.execute(db.session, run_id, runner=runner,
                                  batch_size=batch_size).status.value


def dispatch(run: ImportRun) -> runner.Dispatch:
    """Hand a queued (committed) run to a runner. Nothing is lost if Redis is down: it then
    runs on a thread in this process, and the returned notice says so."""
    return runner.dispatch(KIND, str(run.id), job_id=str(run.id),
                           description=f"{run.label}: {run.filename}")


def start_thread(app: Flask, run_id: object) -> object:
    """Run the run on a thread of this process whatever `REDIS_URL` says."""
    return runner.run_in_thread(app, KIND, str(run_id), job_id=str(run_id))


def queue(app: Flask | None = None) -> Queue:
    """The RQ queue of import jobs."""
    return runner.queue(QUEUE, app)


def run_import_job(run_id: str) -> str:
    """The RQ job as the single-module `webapp/jobs.py` enqueued it (`webapp.jobs.run_import_job`):
    jobs queued before an upgrade still run. New jobs go through `worker.perform`."""
    from webapp.jobs.worker import perform

    return perform(KIND, run_id)
