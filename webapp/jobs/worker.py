"""The RQ side: `work` runs a worker (`flask worker`), `perform` is every job it runs.

A worker process has one app: the one `work` was given (`flask worker` passes its own), kept
for the process and inherited by each forked work horse. No job builds an app of its own; a
plain `rq worker` started outside `flask worker` builds one, once per process.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from flask import Flask, has_app_context
from rq import Queue, SimpleWorker, Worker

from webapp.extensions import db
from webapp.jobs import runner

_app: Flask | None = None
_app_lock = threading.Lock()
_fork_hook_for: set[int] = set()  # engines whose pools a forked child already leaves alone


def worker_app() -> Flask:
    """This process's app: the worker's, or (outside `flask worker`) one built once."""
    global _app
    with _app_lock:
        if _app is None:
            from webapp import create_app

            _app = create_app()
        return _app


def perform(kind: str, *args: Any) -> Any:
    """The RQ job: run job `kind` with `args` inside the worker's app."""
    job_kind = runner.kind(kind)  # an unknown kind fails the job, kept in RQ's failed registry
    if has_app_context():  # the worker's (a SimpleWorker shares its caller's session)
        return job_kind.func(*args, runner=runner.RQRunner.name)
    with worker_app().app_context():
        try:
            return job_kind.func(*args, runner=runner.RQRunner.name)
        finally:
            db.session.remove()


def work(app: Flask, *, burst: bool = False, simple: bool = False) -> bool:
    """Run an RQ worker inside `app` on every job kind's queue (`flask worker`). It reaps what
    dead runners left behind first. `simple` runs jobs in this process (tests)."""
    global _app
    previous, _app = _app, app
    try:
        connection = runner.redis_connection(app.config["REDIS_URL"])
        with app.app_context():
            if not simple:
                # the forked work horse must not reuse the parent's database connections
                engine = db.engine
                if id(engine) not in _fork_hook_for:
                    _fork_hook_for.add(id(engine))
                    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
            runner.reap_all(db.session)
            db.session.remove()
        worker_class = SimpleWorker if simple else Worker
        queues = [Queue(name, connection=connection) for name in runner.queue_names()]
        worker = worker_class(queues, connection=connection)
        return worker.work(burst=burst, with_scheduler=False)
    finally:
        _app = previous
