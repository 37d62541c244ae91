"""One interface, two runners: RQ when `REDIS_URL` is set and Redis answers, a thread of this
process otherwise (SPEC §2).

A job kind registers a function under a name (`register`); `dispatch(kind, *args)` hands
`(kind, args)` to a runner, which calls that function inside the app with the same arguments
and `runner="rq"` or `runner="thread"`. The RQ job itself is always `webapp.jobs.worker.perform`
(kind, *args), so a new kind (bulk actions, exports, …) only adds a module. Arguments travel
through Redis: keep them small and plain (ids as strings).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Flask, current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy.orm import Session

from webapp.extensions import db

log = logging.getLogger(__name__)

RQ_JOB = "webapp.jobs.worker.perform"  # what every RQ job runs: perform(kind, *args)
JOB_TIMEOUT = 60 * 60  # seconds a job may run before RQ stops it, unless its kind's config says
FAILURE_TTL = 7 * 24 * 60 * 60  # failed jobs stay inspectable in RQ for a week
RESULT_TTL = 24 * 60 * 60
REDIS_UNAVAILABLE = (
    "The job queue (Redis) cannot be reached, so this job runs inside the web server instead. "
    "It will finish unless this server stops; then start it again."
)


class UnknownJobKind(LookupError):
    """No job kind is registered under this name."""


@dataclass(frozen=True)
class JobKind:
    name: str
    func: Callable[..., Any]  # func(*args, runner=...) inside an app context; its result goes to RQ
    queue: str  # the RQ queue (workers listen on every registered kind's queue)
    timeout_config: str | None = None  # the config key of its RQ timeout, in seconds
    default_timeout: int = JOB_TIMEOUT
    # said to the person who started it when Redis is down and it runs on a thread instead
    fallback_notice: str = REDIS_UNAVAILABLE
    # marks failed what a dead runner left behind; called with a session at worker start and
    # before each thread job, and returns how many it marked (`flask maintenance` reaps too)
    reap: Callable[[Session], int] | None = None

    def timeout(self, app: Flask) -> int:
        if self.timeout_config is None:
            return self.default_timeout
        return int(app.config.get(self.timeout_config) or self.default_timeout)


_kinds: dict[str, JobKind] = {}


def register(name: str, *, queue: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as job kind `name` (see `JobKind` for the options)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if name in _kinds and _kinds[name].func is not func:
            raise ValueError(f"job kind {name!r} is already registered")
        _kinds[name] = JobKind(name, func, queue, **options)
        return func

    return decorate


def kind(name: str) -> JobKind:
    try:
        return _kinds[name]
    except (KeyError, TypeError):
        raise UnknownJobKind(f"no job kind is registered as {name!r}") from None


def kinds() -> list[JobKind]:
    return list(_kinds.values())


def queue_names() -> list[str]:
    """Every registered kind's queue, once, in registration order (what a worker listens on)."""
    return list(dict.fromkeys(k.queue for k in _kinds.values()))


def reap_all(session: Session) -> int:
    """Every kind's reaper (a worker's start)."""
    return sum(k.reap(session) for k in _kinds.values() if k.reap is not None)


@dataclass(frozen=True)
class Dispatch:
    runner: str  # "rq" or "thread"
    notice: str | None = None  # for the person who started the job, when something is unusual


@dataclass(frozen=True)
class Job:
    kind: JobKind
    args: tuple[Any, ...]
    job_id: str
    description: str | None = None


class Runner(Protocol):
    name: str

    def submit(self, job: Job) -> object:
        """Start or queue the job; raise RedisError when that cannot be done (RQ only)."""


def redis_connection(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)


def queue(name: str, app: Flask | None = None) -> Queue:
    app = app or current_app
    return Queue(name, connection=redis_connection(app.config["REDIS_URL"]))


class RQRunner:
    """Enqueues `perform(kind, *args)` on the kind's queue; a `flask worker` runs it."""

    name = "rq"

    def __init__(self, app: Flask) -> None:
        self.app = app

    def submit(self, job: Job) -> None:
        queue(job.kind.queue, self.app).enqueue(
            RQ_JOB,
            job.kind.name,
            *job.args,
            job_id=job.job_id,
            job_timeout=job.kind.timeout(self.app),
            failure_ttl=FAILURE_TTL,
            result_ttl=RESULT_TTL,
            description=job.description,
        )


_threads: set[threading.Thread] = set()
_threads_lock = threading.Lock()


class ThreadRunner:
    """Runs the job on a daemon thread of this process, inside the app. There is no worker in
    this set-up, so the kind's reaper runs first (and `flask maintenance` from cron)."""

    name = "thread"

    def __init__(self, app: Flask) -> None:
        self.app = app

    def submit(self, job: Job) -> threading.Thread:
        app = self.app

        def target() -> None:
            try:
                with app.app_context():
                    try:
                        _reap_before(job.kind)
                        job.kind.func(*job.args, runner=self.name)
                    finally:
                        db.session.remove()
            finally:
                with _threads_lock:
                    _threads.discard(thread)

        thread = threading.Thread(target=target, name=f"{job.kind.name}-{job.job_id}", daemon=True)
        with _threads_lock:
            _threads.add(thread)
        thread.start()
        return thread


def _reap_before(kind: JobKind) -> None:
    if kind.reap is None:
        return
    try:
        kind.reap(db.session)
    except Exception:  # reaping is housekeeping: the job runs anyway
        log.exception("Reaping stale %s jobs failed", kind.name)
        db.session.rollback()


def dispatch(name: str, *args: Any, job_id: str | None = None, description: str | None = None,
             app: Flask | None = None) -> Dispatch:
    """Hand job `name` with `args` to a runner: RQ when `REDIS_URL` is set and Redis answers,
    else a thread of this process (saying so when Redis was expected). Refuses an unknown kind.
    An RQ job with the same `job_id` as a queued one replaces it rather than running twice."""
    job = Job(kind(name), args, job_id or uuid.uuid4().hex, description)
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    notice = None
    if app.config.get("REDIS_URL"):
        try:
            RQRunner(app).submit(job)
            return Dispatch(RQRunner.name)
        except RedisError as exc:
            log.warning("Redis unavailable, running %s job %s in-process: %s", name, job.job_id, exc)
            notice = job.kind.fallback_notice
    ThreadRunner(app).submit(job)
    return Dispatch(ThreadRunner.name, notice)


def run_in_thread(app: Flask, name: str, *args: Any, job_id: str | None = None) -> threading.Thread:
    """Run job `name` on a thread of this process whatever `REDIS_URL` says."""
    return ThreadRunner(app).submit(Job(kind(name), args, job_id or uuid.uuid4().hex))


def wait_for_threads(timeout: float = 60.0) -> None:
    """Wait for this process's job threads (tests, and a graceful shutdown), including those
    they start meanwhile (a job's commit kicks the outbox dispatcher on a thread)."""
    deadline = time.monotonic() + timeout
    while True:
        with _threads_lock:
            running = [t for t in _threads if t is not threading.current_thread()]
        if not running or time.monotonic() >= deadline:
            return
        for thread in running:
            try:
                thread.join(max(0.0, deadline - time.monotonic()))
            except RuntimeError:  # added but not started yet
                time.sleep(0.01)
