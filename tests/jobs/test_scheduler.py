"""The scheduler (SPEC §13): one acts at a time (a PostgreSQL advisory lock; a lease on SQLite),
a second waits and takes over when the first stops; due tasks start once, a task still running
is skipped, a missed run is caught up once; with Redis, RQ's CronScheduler enqueues the task and
a real worker runs it. Time is injected; nothing sleeps for long."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from webapp import create_app, jobs
from webapp.config import Config
from webapp.jobs import runner, scheduled
from webapp.jobs.scheduler import AdvisoryLock, LeaseLock, Scheduler, _period
from webapp.models import TaskRun, TaskStatus
from webapp.models.base import utcnow
from webapp.services import scheduled_tasks, tasks
from webapp.services.actor import Actor

T0 = datetime(2026, 12, 7, 6, 0, 30, tzinfo=UTC)


def _runs(session, task: str) -> list[TaskRun]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(TaskRun).where(TaskRun.task == task)
                                .order_by(TaskRun.created_at)))


def _wait_for(condition, seconds: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def thread_app(app):  # type: ignore[no-untyped-def]
    app.config["REDIS_URL"] = None
    yield app
    jobs.wait_for_threads()


@pytest.fixture
def schedulers(thread_app):  # type: ignore[no-untyped-def]
    """Make schedulers on the test database; close every one at the end (their locks too)."""
    made: list[Scheduler] = []

    def make(**kwargs) -> Scheduler:  # type: ignore[no-untyped-def]
        made.append(Scheduler(thread_app, mode=kwargs.pop("mode", "thread"), **kwargs))
        return made[-1]

    yield make
    for scheduler in made:
        scheduler.close()


# --- exactly one acts ---------------------------------------------------------------------------

def test_two_schedulers_on_postgresql_one_acts_the_other_waits_then_takes_over(
        require_postgres, schedulers):
    first, second = schedulers(), schedulers(retry_seconds=0.05, tick_seconds=0.05)
    assert isinstance(first.lock, AdvisoryLock) and isinstance(second.lock, AdvisoryLock)
    assert first.tick(T0).acting
    assert not second.tick(T0).acting  # started by mistake: it does nothing
    assert first.tick(T0 + timedelta(seconds=20)).acting  # the holder keeps it

    stop = threading.Event()
    waiting = threading.Thread(target=second.run, args=(stop,), daemon=True)
    waiting.start()
    try:
        time.sleep(0.2)  # it retries meanwhile, and keeps waiting
        assert not second.acting
        first.close()  # the first stops: its lock goes with it
        assert _wait_for(lambda: second.acting), "the waiting scheduler did not take over"
        assert not first.tick(T0 + timedelta(minutes=1)).acting  # now the first one waits
    finally:
        stop.set()
        waiting.join(5)
    assert not waiting.is_alive() and not second.acting
    assert first.tick(T0 + timedelta(minutes=2)).acting  # the second gave the lock back


def test_a_lost_database_connection_drops_the_lock_until_it_is_taken_again(require_postgres,
                                                                             schedulers):
    scheduler = schedulers()
    assert scheduler.tick(T0).acting
    scheduler.lock.conn.invalidate()  # the connection died (PostgreSQL restarted)
    assert not scheduler.tick(T0 + timedelta(seconds=20)).acting
    assert scheduler.tick(T0 + timedelta(seconds=40)).acting


def test_on_sqlite_a_lease_lets_one_act_and_is_taken_over_when_it_expires(sqlite_app):
    from webapp.extensions import db

    first = LeaseLock(db.engine, holder="host-a:1", seconds=90)
    second = LeaseLock(db.engine, holder="host-b:2", seconds=90)
    assert first.acquire(T0)
    assert not second.acquire(T0 + timedelta(seconds=10))
    assert first.acquire(T0 + timedelta(seconds=60))  # renewed: now runs to T0+150 s
    assert not second.acquire(T0 + timedelta(seconds=120))
    # the first stopped renewing (killed): once its lease runs out the second takes over
    assert second.acquire(T0 + timedelta(seconds=151))
    assert not first.acquire(T0 + timedelta(seconds=160))
    second.release()
    assert first.acquire(T0 + timedelta(seconds=161))


def test_on_sqlite_a_second_scheduler_waits(sqlite_app):
    sqlite_app.config["REDIS_URL"] = None
    first = Scheduler(sqlite_app, mode="thread")
    second = Scheduler(sqlite_app, mode="thread")
    assert isinstance(first.lock, LeaseLock)
    assert first.tick(T0).acting and not second.tick(T0).acting
    first.close()
    assert second.tick(T0 + timedelta(seconds=1)).acting
    second.close()


# --- the embedded scheduler: due tasks run in this process -----------------------------------

def test_due_tasks_start_once_on_their_schedule(schedulers, session):
    scheduler = schedulers()
    first = scheduler.tick(T0)
    assert first.started == []  # nothing is due the moment it starts
    assert first.wait == 30  # it wakes for deliveries at 06:01:00
    tick = scheduler.tick(T0 + timedelta(seconds=61))  # 06:01:31: deliveries (every minute)
    assert tick.started == ["deliveries"]
    jobs.wait_for_threads()
    [run] = _runs(session, "deliveries")
    assert run.trigger == "schedule" and run.actor_label == "scheduler"
    assert run.status.finished and run.created_at == T0 + timedelta(seconds=61)
    assert scheduler.tick(T0 + timedelta(seconds=80)).started == []  # same minute: not again
    later = scheduler.tick(T0 + timedelta(minutes=5))  # 06:05:30
    assert sorted(later.started) == ["deliveries", "import_reaper"]
    jobs.wait_for_threads()
    assert len(_runs(session, "deliveries")) == 2
    [reaper] = _runs(session, "import_reaper")
    assert reaper.status is TaskStatus.succeeded


def test_a_task_still_running_at_its_next_start_is_skipped_not_doubled(schedulers, session):
    running = scheduled_tasks.start(session, "deliveries", trigger="schedule", now=T0)
    assert tasks.claim(session, running.id)
    scheduler = schedulers()
    scheduler.tick(T0)
    tick = scheduler.tick(T0 + timedelta(seconds=61))
    assert tick.skipped == ["deliveries"] and tick.started == []
    assert scheduler.tick(T0 + timedelta(seconds=70)).skipped == []  # said once per start
    assert [r.id for r in _runs(session, "deliveries")] == [running.id]
    tasks.finish(session, running.id, {"message": "done"})
    assert scheduler.tick(T0 + timedelta(seconds=121)).started == ["deliveries"]


def test_a_run_missed_while_nothing_ran_is_caught_up_once(schedulers, session):
    old = scheduled_tasks.start(session, "maintenance", trigger="schedule",
                                now=T0 - timedelta(days=3))
    tasks.claim(session, old.id)
    tasks.finish(session, old.id, {"message": "done"})
    scheduler = schedulers()
    assert "maintenance" in scheduler.tick(T0).started
    jobs.wait_for_threads()
    assert "maintenance" not in scheduler.tick(T0 + timedelta(minutes=1)).started
    assert len(_runs(session, "maintenance")) == 2


def test_a_changed_schedule_applies_at_the_next_tick(schedulers, session):
    scheduler = schedulers()
    scheduler.tick(T0)
    scheduled_tasks.update_schedules(session, Actor.system("test"), {"deliveries": "0 0 1 1 *"})
    assert "deliveries" not in scheduler.tick(T0 + timedelta(minutes=2)).started


def test_the_thread_is_only_started_when_serving():
    assert Config({}).SCHEDULER_THREAD is True  # the embedded default
    assert Config({"REDIS_URL": "redis://x"}).SCHEDULER_THREAD is False
    assert Config({"REDIS_URL": "redis://x", "SCHEDULER_THREAD": "1"}).SCHEDULER_THREAD is True
    app = create_app({"SECRET_KEY": "x", "TESTING": True, "SCHEDULER_THREAD": True})
    hooks = [f.__name__ for f in app.before_request_funcs.get(None, [])]
    assert "_start_scheduler" not in hooks
    serving = create_app({"SECRET_KEY": "x", "TESTING": False, "SCHEDULER_THREAD": True})
    # the first hook, so the /setup redirect of a fresh install does not keep it from starting
    assert serving.before_request_funcs[None][0].__name__ == "_start_scheduler"


# --- with Redis: RQ's CronScheduler enqueues, a real worker runs ----------------------------

@pytest.fixture
def rq_app(app, require_redis):  # type: ignore[no-untyped-def]
    app.config["REDIS_URL"] = require_redis
    queue = runner.queue(scheduled.QUEUE, app)
    queue.empty()
    yield app
    queue.empty()
    queue.connection.close()


def test_rq_cron_enqueues_the_task_and_a_worker_runs_it(rq_app, session):
    scheduler = Scheduler(rq_app, mode="rq")
    try:
        scheduler.tick()
        job = scheduler.cron_job("stale_scan")
        assert job is not None and job.cron == "15 * * * *" and job.queue_name == scheduled.QUEUE
        assert job.job_options["ttl"] == 3600  # one waiting run per task at most
        job.next_enqueue_time = utcnow() - timedelta(seconds=1)  # its moment has come
        tick = scheduler.tick()
        assert "stale_scan" in tick.started and 0 <= tick.wait <= 60
        queue = runner.queue(scheduled.QUEUE, rq_app)
        [queued] = [j for j in queue.get_jobs() if j.args == (scheduled.KIND, "stale_scan")]
        assert queued.func_name == runner.RQ_JOB
        assert _runs(session, "stale_scan") == []  # nothing runs it until a worker does
        jobs.work(rq_app, burst=True, simple=True)
        [run] = _runs(session, "stale_scan")
        assert run.status is TaskStatus.succeeded and run.trigger == "schedule"
        queued.refresh()
        assert queued.is_finished and queued.return_value() == "succeeded"

        # an admin's new schedule re-registers the job at the next tick
        scheduled_tasks.update_schedules(session, Actor.system("test"), {"stale_scan": "0 4 * * *"})
        scheduler.tick()
        assert scheduler.cron_job("stale_scan").cron == "0 4 * * *"
    finally:
        scheduler.close()


def test_an_rq_job_for_a_task_still_running_is_skipped(rq_app, session):
    running = scheduled_tasks.start(session, "stale_scan", trigger="Run now")
    tasks.claim(session, running.id)
    runner.queue(scheduled.QUEUE, rq_app).enqueue(runner.RQ_JOB, scheduled.KIND, "stale_scan")
    jobs.work(rq_app, burst=True, simple=True)
    assert [r.id for r in _runs(session, "stale_scan")] == [running.id]


def test_the_period_bounds_how_long_a_queued_run_waits():
    assert _period("* * * * *") == 60 and _period("*/5 * * * *") == 300
    assert _period("0 3 * * *") == 86400
