"""The generic runner: a registered job kind runs on a thread without Redis, through RQ (a real
SimpleWorker on the real Redis) with it, and on a thread saying so when Redis is down; an
unknown kind is refused."""

from __future__ import annotations

import threading

import pytest
from flask import current_app, has_app_context

from webapp import jobs
from webapp.jobs import runner, worker

QUEUE = "jobs-test"


@pytest.fixture
def echo(monkeypatch):  # type: ignore[no-untyped-def]
    """A job kind "test-echo" on its own queue, registered for this test only; the calls it got."""
    monkeypatch.setattr(runner, "_kinds", dict(runner._kinds))
    calls: list[dict[str, object]] = []

    @jobs.register("test-echo", queue=QUEUE, timeout_config="TEST_JOB_TIMEOUT", default_timeout=77)
    def echo_job(*args: str, runner: str) -> str:
        calls.append({"args": args, "runner": runner, "app": current_app._get_current_object(),
                      "thread": threading.current_thread()})
        return "-".join(args)

    return calls


@pytest.fixture
def rq_queue(app, require_redis):  # type: ignore[no-untyped-def]
    app.config["REDIS_URL"] = require_redis
    queue = runner.queue(QUEUE, app)
    queue.empty()
    yield queue
    queue.empty()
    queue.connection.close()


def test_without_redis_a_kind_runs_on_a_thread_inside_the_app(app, echo):
    app.config["REDIS_URL"] = None
    assert jobs.dispatch("test-echo", "a", "b") == jobs.Dispatch("thread")
    jobs.wait_for_threads()
    [call] = echo
    assert call["args"] == ("a", "b") and call["runner"] == "thread"
    assert call["app"] is app and call["thread"] is not threading.current_thread()


def test_with_redis_a_kind_goes_through_rq_and_a_worker_runs_it(app, echo, rq_queue):
    app.config["TEST_JOB_TIMEOUT"] = 123
    assert jobs.dispatch("test-echo", "x", "y", job_id="echo-1", description="echo") == jobs.Dispatch("rq")
    job = rq_queue.fetch_job("echo-1")
    assert job is not None and job.func_name == runner.RQ_JOB and job.args == ("test-echo", "x", "y")
    assert job.timeout == 123 and job.failure_ttl == jobs.FAILURE_TTL
    assert job.description == "echo"
    assert echo == []  # nothing runs it until a worker does
    assert QUEUE in runner.queue_names() and jobs.QUEUE in runner.queue_names()
    jobs.work(app, burst=True, simple=True)
    [call] = echo
    assert call["args"] == ("x", "y") and call["runner"] == "rq"
    job.refresh()
    assert job.is_finished and job.return_value() == "x-y"


def test_a_kind_without_timeout_config_gets_its_default(app, echo, rq_queue):
    jobs.dispatch("test-echo", job_id="echo-2")
    assert rq_queue.fetch_job("echo-2").timeout == 77


def test_redis_down_runs_the_kind_on_a_thread_and_says_so(app, echo):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    assert jobs.dispatch("test-echo", "z") == jobs.Dispatch("thread", runner.REDIS_UNAVAILABLE)
    jobs.wait_for_threads()
    assert [c["runner"] for c in echo] == ["thread"]


@pytest.mark.parametrize("redis", [False, True])
def test_an_unknown_kind_is_refused(app, echo, redis, request):
    app.config["REDIS_URL"] = request.getfixturevalue("require_redis") if redis else None
    with pytest.raises(jobs.UnknownJobKind, match="no-such-kind"):
        jobs.dispatch("no-such-kind", "a")
    jobs.wait_for_threads()
    assert echo == []


def test_an_unknown_kind_reaching_a_worker_fails_its_job(app, echo, rq_queue):
    job = rq_queue.enqueue(runner.RQ_JOB, "no-such-kind", "a", job_id="unknown-1")
    jobs.work(app, burst=True, simple=True)
    job.refresh()
    assert job.is_failed and "UnknownJobKind" in job.latest_result().exc_string


def test_a_kind_is_registered_once(echo):
    with pytest.raises(ValueError, match="already registered"):
        jobs.register("test-echo", queue=QUEUE)(lambda *args, runner: None)


def test_a_job_outside_an_app_context_uses_the_workers_app_not_a_new_one(app, echo, monkeypatch):
    """A forked work horse of `flask worker` has the worker's app; a job never builds one."""
    import webapp

    monkeypatch.setattr(webapp, "create_app", lambda *a, **k: pytest.fail("create_app per job"))
    monkeypatch.setattr(worker, "_app", app)
    results: list[object] = []

    def horse() -> None:  # a new thread has no app context, as a process without one
        assert not has_app_context()
        results.append(worker.perform("test-echo", "p"))

    thread = threading.Thread(target=horse)
    thread.start()
    thread.join(10)
    assert results == ["p"]
    assert echo[0]["app"] is app and echo[0]["runner"] == "rq"
