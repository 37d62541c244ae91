"""/admin/tasks (SPEC §13): each task with its schedule (editable, audited, an invalid cron a
422 naming the task), last run, next run and Run now, which starts a task run that a worker (or
a thread of the server) runs. Admins only."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.web.pages import in_app_layout, labelled_control, parse
from webapp import jobs
from webapp.jobs import runner, scheduled
from webapp.models import AuditAction, AuditEvent, Setting, TaskRun, TaskStatus
from webapp.services import scheduled_tasks, tasks


def _runs(session, task: str) -> list[TaskRun]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(TaskRun).where(TaskRun.task == task)))


def test_the_page_lists_every_task_with_schedule_last_and_next_run(client, login_as, session):
    login_as("admin")
    done = scheduled_tasks.start(session, "import_reaper", trigger="schedule")
    tasks.claim(session, done.id)
    tasks.finish(session, done.id, {"message": "0 import(s) marked failed."})
    response = client.get("/admin/tasks")
    assert response.status_code == 200 and in_app_layout(response.data)
    page = parse(response.data)
    for task in scheduled_tasks.TASKS.values():
        row = page.by_id(f"task-{task.name}")
        assert row is not None and task.title in row.text
        assert labelled_control(page, f"Schedule of {task.title}").get("value") == task.schedule
        if task.requires is None:
            assert row.find("button").text == "Run now"
    # backup is off without BACKUP_DIR: no Run now, and the row says why
    backup = page.by_id("task-backup")
    assert backup.find("button") is None and "Off: BACKUP_DIR is not set." in backup.text
    reaper = page.by_id("task-import_reaper").text
    assert "succeeded" in reaper and "0 import(s) marked failed." in reaper
    assert "never run" in page.by_id("task-maintenance").text
    assert "UTC" in page.by_id("task-maintenance").text  # the next run


def test_an_htmx_request_gets_the_content_block_alone(client, login_as):
    login_as("admin")
    response = client.get("/admin/tasks", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    body = response.get_data(as_text=True)
    assert "Scheduled tasks" in body and "<html" not in body


def test_a_schedule_change_is_saved_and_audited(client, login_as, session):
    login_as("admin")
    response = client.post("/admin/tasks/schedules", data={"schedule-stale_scan": "*/30 * * * *",
                                                           "schedule-maintenance": "30 2 * * *"})
    assert response.status_code == 303
    session.expire_all()
    assert session.get(Setting, "task_schedules").value == {"stale_scan": "*/30 * * * *"}
    event = session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    assert event.action == AuditAction.settings_change
    assert event.changes == {"task_schedules": [{}, {"stale_scan": "*/30 * * * *"}]}
    page = parse(client.get("/admin/tasks").data)
    assert labelled_control(page, "Schedule of Stale scan").get("value") == "*/30 * * * *"
    assert "default 15 * * * *" in page.by_id("task-stale_scan").text


@pytest.mark.parametrize("cron", ["61 * * * *", "whenever", ""])
def test_an_invalid_schedule_is_a_422_naming_the_task(client, login_as, session, cron):
    login_as("admin")
    response = client.post("/admin/tasks/schedules", data={"schedule-digests": cron})
    assert response.status_code == 422
    page = parse(response.data)
    field = labelled_control(page, "Schedule of Digest e-mails")
    assert field.get("aria-invalid") == "true" and field.get("value") == cron
    assert "cron" in page.by_id("task-digests").text
    session.expire_all()
    assert session.get(Setting, "task_schedules") is None


def test_run_now_without_redis_runs_on_a_thread(app, client, login_as, session):
    app.config["REDIS_URL"] = None
    login_as("admin")
    response = client.post("/admin/tasks/stale_scan/run")
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/tasks")
    jobs.wait_for_threads()
    [run] = _runs(session, "stale_scan")
    assert run.status is TaskStatus.succeeded and run.trigger.startswith("Run now by ")
    assert "No asset turned stale" in parse(client.get("/admin/tasks").data).by_id("task-stale_scan").text


def test_run_now_with_redis_goes_to_a_worker(app, client, login_as, session, require_redis):
    app.config["REDIS_URL"] = require_redis
    queue = runner.queue(scheduled.QUEUE, app)
    queue.empty()
    try:
        login_as("admin")
        assert client.post("/admin/tasks/maintenance/run").status_code == 303
        [run] = _runs(session, "maintenance")
        assert run.status is TaskStatus.queued
        assert queue.fetch_job(str(run.id)).args == (scheduled.KIND, "maintenance", str(run.id))
        jobs.work(app, burst=True, simple=True)
        [run] = _runs(session, "maintenance")
        assert run.status is TaskStatus.succeeded and "Purged 0 asset(s)" in run.result["message"]
    finally:
        queue.empty()
        queue.connection.close()


def test_run_now_while_it_runs_starts_nothing_and_says_so(client, login_as, session):
    login_as("admin")
    running = scheduled_tasks.start(session, "digests", trigger="schedule")
    tasks.claim(session, running.id)
    response = client.post("/admin/tasks/digests/run", follow_redirects=True)
    assert "Digest e-mails is already running" in response.get_data(as_text=True)
    assert [r.id for r in _runs(session, "digests")] == [running.id]


def test_an_unknown_task_is_a_404(client, login_as):
    login_as("admin")
    assert client.post("/admin/tasks/coffee/run").status_code == 404


@pytest.mark.parametrize("role", ["viewer", "analyst", "reviewer"])
@pytest.mark.parametrize("method,path,data", [
    ("GET", "/admin/tasks", None),
    ("POST", "/admin/tasks/schedules", {"schedule-stale_scan": "0 * * * *"}),
    ("POST", "/admin/tasks/stale_scan/run", None),
])
def test_only_admins(client, login_as, session, role, method, path, data):
    login_as(role)
    response = client.open(path, method=method, data=data)
    assert response.status_code == 403 and in_app_layout(response.data)
    session.expire_all()
    assert session.get(Setting, "task_schedules") is None and _runs(session, "stale_scan") == []


def test_signed_out_is_sent_to_sign_in(client, make_user):
    make_user("admin")
    response = client.get("/admin/tasks")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
