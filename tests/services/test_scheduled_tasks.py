"""Scheduled tasks (SPEC §13): schedules validated with croniter and audited, next runs computed,
a run recorded in task_runs, a running task not started twice, a failing task recorded failed
with a task_failed outbox row in the same commit, and the stale scan announcing each asset once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from tests.factories import make_asset
from webapp.models import (
    Asset,
    AuditAction,
    AuditEvent,
    EventSeverity,
    ImportRun,
    ImportStatus,
    OutboxEvent,
    Role,
    Setting,
    TaskRun,
    TaskStatus,
)
from webapp.models.base import utcnow
from webapp.services import assets as asset_service
from webapp.services import imports, outbox, scheduled_tasks, settings, tasks
from webapp.services.actor import Actor
from webapp.services.errors import InvalidState, NotFound, ValidationFailed

ADMIN = Actor.system("test admin")
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def _events(session, kind: str) -> list[OutboxEvent]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(OutboxEvent).where(OutboxEvent.kind == kind)
                                .order_by(OutboxEvent.created_at)))


def _run(session, name: str, now: datetime = NOW) -> TaskRun:  # type: ignore[no-untyped-def]
    run = scheduled_tasks.start(session, name, trigger="test", now=now)
    assert run is not None
    scheduled_tasks.execute(session, run.id, now=now)
    session.expire_all()
    return session.get(TaskRun, run.id)


@pytest.fixture
def failing_task(monkeypatch):  # type: ignore[no-untyped-def]
    """A task "explode" that raises an event, uncommitted, then fails (registered for this
    test only)."""
    monkeypatch.setattr(scheduled_tasks, "TASKS", dict(scheduled_tasks.TASKS))

    @scheduled_tasks.register("explode", title="Explode", description="fails", schedule="0 * * * *")
    def explode(session, ctx):  # type: ignore[no-untyped-def]
        outbox.emit(session, "assets_stale", subject="written before the failure")
        raise RuntimeError("the disk is full")

    return "explode"


# --- schedules ----------------------------------------------------------------------------------

def test_every_task_of_the_spec_is_registered_with_a_valid_default():
    assert set(scheduled_tasks.TASKS) == {"maintenance", "stale_scan", "policy_evaluate",
                                          "digests", "import_reaper", "deliveries", "backup"}
    for task in scheduled_tasks.TASKS.values():
        assert settings.cron_error(task.schedule) is None and task.title and task.description
    assert scheduled_tasks.TASKS["deliveries"].schedule == "* * * * *"


@pytest.mark.parametrize("cron", ["61 * * * *", "every day", "* * * *", "* * * * * *", "", 5,
                                  "0 3 * * \x00"])
def test_an_invalid_cron_is_refused_naming_the_field(session, cron):
    with pytest.raises(ValidationFailed) as refused:
        scheduled_tasks.update_schedules(session, ADMIN, {"stale_scan": cron})
    assert list(refused.value.errors) == ["task_schedules.stale_scan"]
    assert refused.value.status == 422
    session.rollback()
    assert session.get(Setting, "task_schedules") is None


def test_an_unknown_task_is_refused(session):
    with pytest.raises(ValidationFailed) as refused:
        scheduled_tasks.update_schedules(session, ADMIN, {"coffee": "0 1 * * *"})
    assert list(refused.value.errors) == ["task_schedules.coffee"]
    with pytest.raises(NotFound):
        scheduled_tasks.start(session, "coffee", trigger="test")


def test_a_schedule_change_is_audited_and_moves_the_next_run(session):
    [before] = [v for v in scheduled_tasks.overview(session, NOW) if v.task.name == "maintenance"]
    assert (before.schedule, before.default) == ("30 2 * * *", True)
    assert before.next_run == datetime(2026, 12, 8, 2, 30, tzinfo=UTC)

    changes = scheduled_tasks.update_schedules(session, ADMIN, {"maintenance": " 0  */6 * * * "})
    assert changes == {"task_schedules": [{}, {"maintenance": "0 */6 * * *"}]}
    event = session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    assert event.action == AuditAction.settings_change
    assert event.changes == {"task_schedules": [{}, {"maintenance": "0 */6 * * *"}]}
    [after] = [v for v in scheduled_tasks.overview(session, NOW) if v.task.name == "maintenance"]
    assert (after.schedule, after.default) == ("0 */6 * * *", False)
    assert after.next_run == datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

    # back to the default: nothing stored for it any more
    scheduled_tasks.update_schedules(session, ADMIN, {"maintenance": "30 2 * * *"})
    assert settings.get(session, "task_schedules") == {}
    assert scheduled_tasks.update_schedules(session, ADMIN, {"maintenance": "30 2 * * *"}) == {}


# --- runs ---------------------------------------------------------------------------------------

def test_a_run_is_recorded_with_its_message_and_duration(session):
    asset = make_asset(session, name="long-gone")
    asset_service.delete(session, ADMIN, asset.id)
    session.execute(update(Asset).where(Asset.id == asset.id)
                    .values(deleted_at=utcnow() - timedelta(days=45)))
    session.commit()
    run = _run(session, "maintenance")
    assert run.status is TaskStatus.succeeded and run.trigger == "test"
    assert run.started_at is not None and run.finished_at >= run.started_at
    assert run.result["purged"] == 1
    assert scheduled_tasks.message(run).startswith("Purged 1 asset(s) from the trash")
    assert session.get(Asset, asset.id) is None
    [view] = [v for v in scheduled_tasks.overview(session, NOW) if v.task.name == "maintenance"]
    assert view.last_run.id == run.id and view.duration is not None


def test_a_task_still_running_is_not_started_twice(session):
    first = scheduled_tasks.start(session, "import_reaper", trigger="schedule", now=NOW)
    assert tasks.claim(session, first.id)
    assert scheduled_tasks.start(session, "import_reaper", trigger="schedule",
                                 now=NOW + timedelta(minutes=5)) is None
    with pytest.raises(InvalidState, match="already running"):
        scheduled_tasks.run_now(session, "import_reaper", ADMIN)
    assert session.scalar(select(TaskRun.id).where(TaskRun.id != first.id)) is None
    # its run claimed twice (a job delivered twice) runs once
    assert scheduled_tasks.execute(session, first.id, now=NOW) == "skipped"
    tasks.finish(session, first.id, {"message": "done"})
    assert scheduled_tasks.start(session, "import_reaper", trigger="schedule",
                                 now=NOW + timedelta(minutes=10)) is not None


def test_a_run_queued_for_an_hour_was_lost_and_does_not_block_the_task(session):
    lost = scheduled_tasks.start(session, "stale_scan", trigger="schedule", now=utcnow() - timedelta(hours=2))
    again = scheduled_tasks.start(session, "stale_scan", trigger="schedule")
    assert again is not None
    session.expire_all()
    assert session.get(TaskRun, lost.id).status is TaskStatus.failed
    assert "No worker picked this run up" in session.get(TaskRun, lost.id).error


def test_a_failing_task_is_recorded_failed_with_a_task_failed_event(session, failing_task):
    run = _run(session, failing_task)
    assert run.status is TaskStatus.failed
    assert run.error == "RuntimeError: the disk is full"
    assert scheduled_tasks.message(run) == "RuntimeError: the disk is full"
    [event] = _events(session, "task_failed")
    assert event.severity is EventSeverity.high and event.min_role is Role.admin
    assert event.link == "/admin/tasks" and "explode" in event.subject
    assert event.payload == {"task": "explode", "run_id": str(run.id),
                             "error": "RuntimeError: the disk is full"}
    # what the task wrote before failing was rolled back; the failure and its event committed
    assert _events(session, "assets_stale") == []


def test_a_dead_runner_reaped_raises_task_failed_too(session):
    run = scheduled_tasks.start(session, "maintenance", trigger="schedule")
    tasks.claim(session, run.id)
    session.execute(update(TaskRun).where(TaskRun.id == run.id)
                    .values(heartbeat_at=utcnow() - timedelta(hours=1)))
    session.commit()
    assert tasks.reap_stale(session) == 1
    [event] = _events(session, "task_failed")
    assert event.payload["run_id"] == str(run.id)


def test_the_import_reaper_marks_dead_imports_failed(session):
    run = imports.create_run(session, ADMIN, data=b'[{"name": "a", "engine": "mysql"}]',
                             filename="a.json")
    session.execute(update(ImportRun).where(ImportRun.id == run.id).values(
        status=ImportStatus.running, heartbeat_at=NOW - timedelta(hours=1)))
    session.commit()
    task_run = _run(session, "import_reaper")
    assert task_run.status is TaskStatus.succeeded and task_run.result["imports"] == 1
    assert session.get(ImportRun, run.id).status is ImportStatus.failed


def test_policy_evaluate_runs_through_the_policy_task_path(session):
    make_asset(session, name="orders-db")
    run = _run(session, "policy_evaluate")
    assert run.task == "policy_evaluate" and run.status is TaskStatus.succeeded
    # results are kept current on every commit: nothing to rewrite, one asset in the snapshot
    assert run.result["assets"] == 1 and run.total == run.processed == 1
    assert "results" in scheduled_tasks.message(run)


def test_digests_send_the_daily_digests(session):
    run = _run(session, "digests")
    assert run.status is TaskStatus.succeeded, run.error
    assert run.result["sent"] == 0 and run.result["message"] == "0 digest(s) sent."


def test_deliveries_sweep_the_outbox(session):
    run = _run(session, "deliveries")
    assert run.status is TaskStatus.succeeded, run.error
    assert {"dispatched", "webhook_deliveries"} <= set(run.result)


# --- the stale scan -----------------------------------------------------------------------------

def _seen(session, name: str, days_ago: float) -> uuid.UUID:  # type: ignore[no-untyped-def]
    """Seen a while ago, and missed `days_ago` days ago by a scan that covered it (SPEC §6)."""
    asset = make_asset(session, name=name)
    session.execute(update(Asset).where(Asset.id == asset.id).values(
        first_seen_at=NOW - timedelta(days=400), last_seen_at=NOW - timedelta(days=days_ago + 1),
        missed_since=NOW - timedelta(days=days_ago)))
    session.commit()
    return asset.id


def test_stale_scan_announces_assets_turned_stale_once(session):
    _seen(session, "stale-long-ago", 90)
    _seen(session, "stale-today", 30.5)
    _seen(session, "fresh", 29.5)  # stale in 12 hours
    gone = _seen(session, "stale-in-trash", 60)
    asset_service.delete(session, ADMIN, gone)
    make_asset(session, name="never-imported")  # not seen by any import: never stale

    first = _run(session, "stale_scan", NOW)
    assert first.status is TaskStatus.succeeded and first.result["newly_stale"] == 2
    [event] = _events(session, "assets_stale")
    assert event.payload["count"] == 2 and event.subject == "2 assets turned stale"
    assert event.link == "/assets?stale=true"
    assert event.min_role is Role.analyst and event.severity is EventSeverity.medium

    # an hour later nothing new: the same assets are not announced again
    second = _run(session, "stale_scan", NOW + timedelta(hours=1))
    assert second.result["newly_stale"] == 0 and second.status is TaskStatus.succeeded
    assert len(_events(session, "assets_stale")) == 1

    # a day later "fresh" crossed the cutoff: announced alone
    third = _run(session, "stale_scan", NOW + timedelta(days=1))
    assert third.result["newly_stale"] == 1
    latest = _events(session, "assets_stale")[-1]
    assert latest.payload["count"] == 1 and latest.subject == "1 asset turned stale"


def test_a_failed_stale_scan_does_not_move_the_cutoff(session, monkeypatch):
    _seen(session, "stale-a", 40)

    emit = outbox.emit

    def broken(session, kind, **kwargs):  # type: ignore[no-untyped-def]
        if kind == "assets_stale":
            raise RuntimeError("outbox unavailable")
        return emit(session, kind, **kwargs)

    monkeypatch.setattr(outbox, "emit", broken)
    assert _run(session, "stale_scan").status is TaskStatus.failed
    monkeypatch.undo()
    assert _run(session, "stale_scan", NOW + timedelta(minutes=5)).result["newly_stale"] == 1
    assert len(_events(session, "assets_stale")) == 1


# --- backup -------------------------------------------------------------------------------------

def _run_with(session, name: str, config: dict, now: datetime = NOW) -> TaskRun:  # type: ignore[no-untyped-def]
    run = scheduled_tasks.start(session, name, trigger="test", now=now)
    assert run is not None
    scheduled_tasks.execute(session, run.id, now=now, config=config)
    session.expire_all()
    return session.get(TaskRun, run.id)


def test_backup_is_off_without_backup_dir(app, session):
    assert "backup" not in scheduled_tasks.schedules(session, config={})
    assert "backup" in scheduled_tasks.schedules(session, config={"BACKUP_DIR": "/srv/backups"})
    app.config["BACKUP_DIR"] = None
    [view] = [v for v in scheduled_tasks.overview(session) if v.task.name == "backup"]
    assert view.off == "Off: BACKUP_DIR is not set."
    with pytest.raises(InvalidState, match="BACKUP_DIR is not set"):
        scheduled_tasks.run_now(session, "backup", ADMIN)
    assert scheduled_tasks.active(session, "backup") is None


def test_backup_writes_a_dump_into_backup_dir_and_keeps_the_newest(session, tmp_path):
    make_asset(session, name="ledger-db")
    config = {"BACKUP_DIR": str(tmp_path / "backups"), "BACKUP_KEEP": 2}
    runs = [_run_with(session, "backup", config, now=NOW + timedelta(days=d)) for d in range(3)]
    assert [r.status for r in runs] == [TaskStatus.succeeded] * 3
    kept = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert kept == ["inventory-20261208T060000Z.jsonl.gz", "inventory-20261209T060000Z.jsonl.gz"]
    last = runs[-1]
    assert last.result["path"].endswith("inventory-20261209T060000Z.jsonl.gz")
    assert last.result["size"] > 0 and last.result["removed"] == 1
    assert scheduled_tasks.message(last).startswith("Backed up ")


def test_a_failed_backup_notifies_admins_with_its_reason(session, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the backup directory should be")
    run = _run_with(session, "backup", {"BACKUP_DIR": str(blocker / "backups")})
    assert run.status is TaskStatus.failed
    assert run.error.startswith("Cannot create the backup directory")
    [event] = _events(session, "task_failed")
    assert event.min_role is Role.admin and event.subject.startswith("Task backup failed: Cannot create")
    assert event.payload["error"] == run.error
