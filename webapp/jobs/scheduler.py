"""The scheduler (SPEC §13): starts each scheduled task when its cron schedule says, and only one
scheduler acts at a time.

    flask --app webapp scheduler      # with REDIS_URL: RQ's CronScheduler enqueues, workers run
    SCHEDULER_THREAD=1 (the default without REDIS_URL): a thread of the web process, started by
                                      # its first request, runs due tasks on job threads

Exactly one acts: it holds the scheduler lock, a PostgreSQL advisory lock on a connection of its
own (released by PostgreSQL when that connection or process dies), or on SQLite a lease row it
renews every tick (taken over once it expires). Any other scheduler started by mistake waits,
retrying the lock, and takes over when the first stops.

With Redis, RQ's `CronScheduler` keeps the schedule and enqueues `perform("scheduled_task",
name)`; we drive it tick by tick (`enqueue_jobs`, `heartbeat`) instead of its `start()` loop,
because the lock must be checked between ticks and schedules change at runtime (an admin edits
them: a changed job is registered again). Without Redis, a task is due when its schedule names
a moment after its latest run (a `task_runs` row, so a restarted or new scheduler carries on
where the last one stopped, catching up once on a run missed while nothing was running).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from croniter import croniter
from flask import Flask
from redis.exceptions import RedisError
from rq.cron import CronJob, CronScheduler
from rq.exceptions import SchedulerNotFound
from sqlalchemy import Engine, case, insert, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from webapp.extensions import db
from webapp.jobs import runner, scheduled, worker
from webapp.models import SchedulerLease
from webapp.models.base import utcnow
from webapp.services import scheduled_tasks

log = logging.getLogger(__name__)

ADVISORY_KEY = 0x1A55E7_5C4ED  # pg_try_advisory_lock's key: "asset scheduler"
LEASE_NAME = "scheduler"
LEASE_SECONDS = 90  # a SQLite lease not renewed for this long is taken over
TICK_SECONDS = 20  # how often the acting scheduler looks (a minute's schedule is never missed)
RETRY_SECONDS = 30  # how often a waiting scheduler tries the lock


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# --- the lock -----------------------------------------------------------------------------------

class SchedulerLock(Protocol):
    def acquire(self, now: datetime) -> bool:
        """Take the lock, or keep it (True); False while another scheduler holds it."""

    def release(self) -> None: ...


class AdvisoryLock:
    """A PostgreSQL session advisory lock held on a dedicated connection: held while that
    connection lives, dropped by PostgreSQL if the process dies."""

    def __init__(self, engine: Engine, key: int = ADVISORY_KEY) -> None:
        self.engine = engine
        self.key = key
        self.conn: Connection | None = None

    def acquire(self, now: datetime) -> bool:
        try:
            if self.conn is not None:  # held: make sure its connection still lives
                self.conn.execute(text("SELECT 1"))
                return True
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}):
                self.conn = conn
                return True
            conn.close()
            return False
        except SQLAlchemyError:  # the database restarted: the lock went with the connection
            log.warning("The scheduler lost its database connection (and the lock)", exc_info=True)
            self._drop()
            return False

    def release(self) -> None:
        if self.conn is None:
            return
        with contextlib.suppress(SQLAlchemyError):
            self.conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        self._drop()

    def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self.conn.invalidate()  # never back to the pool still holding the lock
                self.conn.close()
        self.conn = None


class LeaseLock:
    """A lease row (SQLite): taken when free or expired, renewed on every tick, given up on
    release. A scheduler that stops renewing loses it after `seconds`."""

    def __init__(self, engine: Engine, holder: str | None = None, seconds: int = LEASE_SECONDS) -> None:
        self.engine = engine
        self.holder = holder or holder_name()
        self.seconds = seconds

    def acquire(self, now: datetime) -> bool:
        table = SchedulerLease.__table__
        expires = now + timedelta(seconds=self.seconds)
        try:
            with self.engine.begin() as conn:
                taken = conn.execute(
                    update(table).where(table.c.name == LEASE_NAME,
                                        (table.c.holder == self.holder) | (table.c.expires_at < now))
                    .values(holder=self.holder, expires_at=expires,
                            acquired_at=_keep_or(table, self.holder, now))).rowcount
                if taken:
                    return True
            with self.engine.begin() as conn:
                conn.execute(insert(table).values(name=LEASE_NAME, holder=self.holder,
                                                  acquired_at=now, expires_at=expires))
            return True
        except IntegrityError:  # the row exists and someone else's lease runs
            return False
        except SQLAlchemyError:
            log.warning("The scheduler could not reach the database for its lease", exc_info=True)
            return False

    def release(self) -> None:
        table = SchedulerLease.__table__
        try:
            with self.engine.begin() as conn:
                conn.execute(table.delete().where(table.c.name == LEASE_NAME,
                                                  table.c.holder == self.holder))
        except SQLAlchemyError:
            log.warning("The scheduler could not give up its lease", exc_info=True)


def _keep_or(table, holder: str, now: datetime):  # type: ignore[no-untyped-def]
    """acquired_at: unchanged on a renewal, now on a takeover."""
    return case((table.c.holder == holder, table.c.acquired_at), else_=now)


def lock_for(engine: Engine) -> SchedulerLock:
    return AdvisoryLock(engine) if engine.dialect.name == "postgresql" else LeaseLock(engine)


# --- the scheduler ------------------------------------------------------------------------------

@dataclass
class Tick:
    """What one tick did."""

    acting: bool  # this scheduler holds the lock
    started: list[str] = field(default_factory=list)  # tasks started (thread) or enqueued (RQ)
    skipped: list[str] = field(default_factory=list)  # due, but their previous run still goes
    wait: float | None = None  # seconds until the next task is due, when known


class Scheduler:
    """One scheduler: `tick(now)` once, or `run(stop)` until the event is set.

    mode "rq": RQ's CronScheduler enqueues each due task for the workers; mode "thread": due
    tasks run on job threads of this process (`runner.run_in_thread`)."""

    def __init__(self, app: Flask, *, mode: str, lock: SchedulerLock | None = None,
                 tick_seconds: float = TICK_SECONDS, retry_seconds: float = RETRY_SECONDS) -> None:
        if mode not in ("rq", "thread"):
            raise ValueError(f"unknown scheduler mode {mode!r}")
        self.app = app
        self.mode = mode
        with app.app_context():
            self.lock = lock or lock_for(db.engine)
        self.tick_seconds = tick_seconds
        self.retry_seconds = retry_seconds
        self.acting = False
        self.since: datetime | None = None  # when this scheduler began acting
        self.cron: CronScheduler | None = None
        self._acted: dict[str, datetime] = {}  # thread mode: the scheduled moment last acted on

    # one tick -----------------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> Tick:
        now = now or utcnow()
        if not self.lock.acquire(now):
            if self.acting:
                log.warning("Scheduler lost its lock; waiting to take it again")
                self._stop_acting()
            return Tick(acting=False)
        if not self.acting:
            log.info("Scheduler acting (%s mode)", self.mode)
            self.acting, self.since = True, now
        with self.app.app_context():
            try:
                return self._tick_rq() if self.mode == "rq" else self._tick_thread(now)
            finally:
                db.session.remove()

    def _tick_thread(self, now: datetime) -> Tick:
        tick = Tick(acting=True)
        schedules = scheduled_tasks.schedules(db.session, config=self.app.config)
        latest = scheduled_tasks.last_started(db.session)
        assert self.since is not None
        upcoming: list[datetime] = []
        for name, schedule in schedules.items():
            # after its latest run (a missed one runs once, late); a task never run: after
            # this scheduler began
            known = [t for t in (latest.get(name), self._acted.get(name)) if t is not None]
            base = max(known) if known else self.since
            due_at = croniter(schedule, base).get_next(datetime)
            if due_at > now:
                upcoming.append(due_at)
                continue
            self._acted[name] = now
            upcoming.append(croniter(schedule, now).get_next(datetime))
            run = scheduled_tasks.start(db.session, name, trigger="schedule", now=now)
            if run is None:
                log.warning("Scheduled task %s skipped at %s: its previous run is still going",
                            name, now.isoformat())
                tick.skipped.append(name)
                continue
            runner.run_in_thread(self.app, scheduled.KIND, name, str(run.id), now.isoformat(),
                                 job_id=str(run.id))
            tick.started.append(name)
        tick.wait = (min(upcoming) - now).total_seconds() if upcoming else None
        return tick

    def _tick_rq(self) -> Tick:
        tick = Tick(acting=True)
        schedules = scheduled_tasks.schedules(db.session, config=self.app.config)
        try:
            if self.cron is None:
                self.cron = CronScheduler(runner.redis_connection(self.app.config["REDIS_URL"]),
                                          name=f"inventory:{holder_name()}")
                self.cron.register_birth()
            self._sync_jobs(schedules)
            tick.started = [job.name.removeprefix("scheduled:") for job in self.cron.enqueue_jobs()]
            if tick.started:
                self.cron.save()
            self.cron.heartbeat()
            tick.wait = self.cron.calculate_sleep_interval()
        except RedisError:  # Redis down delays the tasks; the next tick tries again
            log.warning("Scheduler cannot reach Redis; tasks wait for it", exc_info=True)
        return tick

    def _sync_jobs(self, schedules: dict[str, str]) -> None:
        """One CronJob per task with its schedule in force; a changed schedule re-registers."""
        assert self.cron is not None
        jobs = self.cron.get_jobs()  # the scheduler's own list
        current = {job.name: job for job in jobs}
        for name, schedule in schedules.items():
            job_name = f"scheduled:{name}"
            job = current.get(job_name)
            if job is not None and job.cron == schedule:
                continue
            if job is not None:
                jobs.remove(job)
                log.info("Schedule of %s changed to %r", name, schedule)
            self.cron.register(worker.perform, scheduled.QUEUE, args=(scheduled.KIND, name),
                               cron=schedule, name=job_name, job_timeout=scheduled.TIMEOUT,
                               ttl=_period(schedule), failure_ttl=runner.FAILURE_TTL,
                               result_ttl=runner.RESULT_TTL)

    def cron_job(self, name: str) -> CronJob | None:
        if self.cron is None:
            return None
        return next((j for j in self.cron.get_jobs() if j.name == f"scheduled:{name}"), None)

    # the loop -----------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Tick until `stop` is set: when the next task is due but at least every `tick_seconds`
        while acting (a changed schedule, the lock's renewal), every `retry_seconds` while another
        scheduler holds the lock. Gives the lock up on the way out."""
        try:
            while not stop.is_set():
                try:
                    tick = self.tick()
                except Exception:  # a bad tick (database down) must not end the scheduler
                    log.exception("Scheduler tick failed")
                    tick = Tick(acting=self.acting)
                if not tick.acting:
                    stop.wait(self.retry_seconds)
                else:  # on time for the next task, and looking at least every tick_seconds
                    wait = self.tick_seconds if tick.wait is None else tick.wait
                    stop.wait(min(self.tick_seconds, max(0.5, wait)))
        finally:
            self.close()

    def close(self) -> None:
        self._stop_acting()
        self.lock.release()

    def _stop_acting(self) -> None:
        self.acting = False
        if self.cron is not None:
            with contextlib.suppress(RedisError, SchedulerNotFound):
                self.cron.register_death()
                self.cron.connection.close()
            self.cron = None


def _period(schedule: str) -> int:
    """Seconds between two of the schedule's moments: an enqueued run not started by the next
    one is dropped, so a stopped worker finds one run per task waiting, not a backlog."""
    it = croniter(schedule, utcnow())
    first = it.get_next(datetime)
    return max(60, int((it.get_next(datetime) - first).total_seconds()))


# --- the web process's scheduler thread ---------------------------------------------------------

_thread_lock = threading.Lock()
_started: dict[int, threading.Thread] = {}  # app id -> its scheduler thread (one per process)


def serve_in_background(app: Flask) -> None:
    """With SCHEDULER_THREAD (the default without REDIS_URL), the first request this process
    serves starts a scheduler thread; never under TESTING, never in a CLI command."""
    if not app.config.get("SCHEDULER_THREAD") or app.config.get("TESTING"):
        return

    def _start_scheduler() -> None:
        if id(app) in _started and _started[id(app)].is_alive():
            return
        with _thread_lock:
            if id(app) in _started and _started[id(app)].is_alive():
                return
            stop = threading.Event()
            mode = "rq" if app.config.get("REDIS_URL") else "thread"
            thread = threading.Thread(target=Scheduler(app, mode=mode).run, args=(stop,),
                                      name="scheduler", daemon=True)
            _started[id(app)] = thread
            thread.start()

    # first, so that no earlier hook's answer (the /setup redirect) keeps it from running
    app.before_request_funcs.setdefault(None, []).insert(0, _start_scheduler)
