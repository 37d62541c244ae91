"""Running import jobs: RQ when `REDIS_URL` is set, a background thread otherwise (SPEC §2).

Both runners call the same `imports.execute`, and both are watched the same way: through the
`ImportRun` row. The RQ job id is the run id, so a run is never queued twice.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from dataclasses import dataclass

from flask import Flask, current_app, has_app_context
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from webapp.extensions import db
from webapp.models import ImportRun
from webapp.services import imports

log = logging.getLogger(__name__)

QUEUE = "imports"
JOB_TIMEOUT = 60 * 60  # seconds an import may run before RQ stops it
FAILURE_TTL = 7 * 24 * 60 * 60  # failed jobs stay inspectable in RQ for a week
RESULT_TTL = 24 * 60 * 60
REDIS_UNAVAILABLE = (
    "The job queue (Redis) cannot be reached, so this import runs inside the web server "
    "instead. It will finish unless this server stops; then run it again."
)

_threads: set[threading.Thread] = set()
_threads_lock = threading.Lock()


@dataclass(frozen=True)
class Dispatch:
    runner: str  # "rq" or "thread"
    notice: str | None = None  # for the person who uploaded, when something is unusual


def redis_connection(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)


def queue(app: Flask | None = None) -> Queue:
    app = app or current_app
    return Queue(QUEUE, connection=redis_connection(app.config["REDIS_URL"]))


def dispatch(run: ImportRun) -> Dispatch:
    """Hand a queued run to a runner. Nothing is lost if Redis is down: the run is already
    committed, and it then runs on a thread in this process (and says so)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    notice = None
    if app.config.get("REDIS_URL"):
        try:
            queue(app).enqueue(
                run_import_job,
                str(run.id),
                job_id=str(run.id),
                job_timeout=app.config.get("IMPORT_JOB_TIMEOUT", JOB_TIMEOUT),
                failure_ttl=FAILURE_TTL,
                result_ttl=RESULT_TTL,
                description=f"{run.label}: {run.filename}",
            )
            return Dispatch("rq")
        except RedisError as exc:
            log.warning("Redis unavailable, running %s in-process: %s", run.label, exc)
            notice = REDIS_UNAVAILABLE
    start_thread(app, run.id)
    return Dispatch("thread", notice)


def start_thread(app: Flask, run_id: uuid.UUID) -> threading.Thread:
    def target() -> None:
        try:
            with app.app_context():
                imports.execute(db.session, run_id, runner="thread")
                db.session.remove()
        finally:
            with _threads_lock:
                _threads.discard(thread)

    thread = threading.Thread(target=target, name=f"import-{run_id}", daemon=True)
    with _threads_lock:
        _threads.add(thread)
    thread.start()
    return thread


def wait_for_threads(timeout: float = 60.0) -> None:
    """Wait for this process's import threads (tests, and a graceful shutdown)."""
    with _threads_lock:
        running = list(_threads)
    for thread in running:
        thread.join(timeout)


def run_import_job(run_id: str) -> str:
    """The RQ job: execute the run inside the app (the worker's, or a new one)."""
    if has_app_context():  # the worker's (a SimpleWorker shares its caller's session)
        return imports.execute(db.session, run_id, runner="rq").status.value
    from webapp import create_app

    with create_app().app_context():
        try:
            return imports.execute(db.session, run_id, runner="rq").status.value
        finally:
            db.session.remove()


def work(app: Flask, *, burst: bool = False, simple: bool = False) -> bool:
    """Run an RQ worker on the imports queue inside the app (`flask worker`)."""
    from rq import SimpleWorker, Worker

    connection = redis_connection(app.config["REDIS_URL"])
    worker_class = SimpleWorker if simple else Worker
    if not simple:
        # the forked work horse must not reuse the parent's database connections
        os.register_at_fork(after_in_child=lambda: db.engine.dispose(close=False))
    with app.app_context():
        imports.reap_stale(db.session)
        db.session.remove()
    worker = worker_class([Queue(QUEUE, connection=connection)], connection=connection)
    return worker.work(burst=burst, with_scheduler=False)
