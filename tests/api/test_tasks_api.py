"""GET /api/v1/tasks and POST /api/v1/tasks/{name}/run (SPEC §13): admin tokens only; schedule,
last run, next run and outcome; Run now starts a task run (202) that a worker or a thread runs;
404 for an unknown task, 409 while one runs."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select

from tests.api.conftest import assert_problem
from webapp import jobs
from webapp.jobs import runner, scheduled
from webapp.models import TaskRun, TaskStatus
from webapp.services import scheduled_tasks, tasks
from webapp.services.actor import Actor


def _count(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(TaskRun)) or 0


def test_list_shows_schedule_next_run_and_last_outcome(client, admin, session):
    scheduled_tasks.update_schedules(session, Actor.system("test"), {"digests": "0 6 * * 1-5"})
    done = scheduled_tasks.start(session, "import_reaper", trigger="schedule")
    tasks.claim(session, done.id)
    tasks.fail(session, done.id, "RuntimeError: boom")
    response = client.get("/api/v1/tasks", headers=admin.headers)
    assert response.status_code == 200
    items = {item["name"]: item for item in response.get_json()["items"]}
    assert set(items) == set(scheduled_tasks.TASKS)
    assert items["digests"]["schedule"] == "0 6 * * 1-5"
    assert items["digests"]["default_schedule"] == "0 7 * * *"
    assert items["digests"]["outcome"] is None and items["digests"]["last_run"] is None
    assert datetime.fromisoformat(items["digests"]["next_run"]).hour == 6
    reaper = items["import_reaper"]
    assert reaper["outcome"] == "failed"
    assert reaper["last_run"]["message"] == "RuntimeError: boom"
    assert reaper["last_run"]["id"] == str(done.id)
    assert reaper["last_run"]["duration_seconds"] >= 0


def test_run_now_runs_the_task_on_a_thread_without_redis(app, client, admin, session):
    app.config["REDIS_URL"] = None
    response = client.post("/api/v1/tasks/stale_scan/run", headers=admin.headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert body["runner"] == "thread" and body["run"]["task"] == "stale_scan"
    assert body["run"]["status"] == "queued"
    assert body["run"]["trigger"] == f"Run now by {admin.user.email} (token automation)"
    jobs.wait_for_threads()
    items = {i["name"]: i for i in client.get("/api/v1/tasks", headers=admin.headers).get_json()["items"]}
    assert items["stale_scan"]["outcome"] == "succeeded"
    assert items["stale_scan"]["last_run"]["id"] == body["run"]["id"]


def test_run_now_with_redis_is_run_by_a_worker(app, client, admin, session, require_redis):
    app.config["REDIS_URL"] = require_redis
    queue = runner.queue(scheduled.QUEUE, app)
    queue.empty()
    try:
        body = client.post("/api/v1/tasks/import_reaper/run", headers=admin.headers).get_json()
        assert body["runner"] == "rq" and queue.fetch_job(body["run"]["id"]) is not None
        jobs.work(app, burst=True, simple=True)
        session.expire_all()
        assert session.scalar(select(TaskRun.status)) is TaskStatus.succeeded
    finally:
        queue.empty()
        queue.connection.close()


def test_run_now_while_it_runs_is_a_409(client, admin, session):
    running = scheduled_tasks.start(session, "maintenance", trigger="schedule")
    tasks.claim(session, running.id)
    body = assert_problem(client.post("/api/v1/tasks/maintenance/run", headers=admin.headers), 409)
    assert "already running" in body["detail"]
    assert _count(session) == 1


@pytest.mark.parametrize("name", ["coffee", "nope", "x" * 300])
def test_an_unknown_task_is_a_404(client, admin, session, name):
    body = assert_problem(client.post(f"/api/v1/tasks/{name}/run", headers=admin.headers), 404)
    assert "no scheduled task" in body["detail"]
    assert _count(session) == 0


@pytest.mark.parametrize("role", ["viewer", "analyst", "reviewer"])
def test_other_roles_get_403(client, make_token, session, role):
    issued = make_token(role)
    for method, path in (("GET", "/api/v1/tasks"), ("POST", "/api/v1/tasks/stale_scan/run")):
        body = assert_problem(client.open(path, method=method, headers=issued.headers), 403)
        assert "admin" in body["detail"]
    assert _count(session) == 0


def test_a_read_only_admin_token_reads_but_cannot_run(client, make_token, session):
    issued = make_token("admin", read_only=True)
    assert client.get("/api/v1/tasks", headers=issued.headers).status_code == 200
    body = assert_problem(client.post("/api/v1/tasks/stale_scan/run", headers=issued.headers), 403)
    assert "read-only" in body["detail"]
    assert _count(session) == 0


def test_without_a_token_401(client):
    assert_problem(client.get("/api/v1/tasks"), 401)
    assert_problem(client.post("/api/v1/tasks/stale_scan/run"), 401)
