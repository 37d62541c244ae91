"""Import jobs on the real runners: RQ (a real worker on Redis), the in-process thread, Redis
down, and a worker killed with SIGKILL mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.conftest import TEST_KEY
from tests.imports.helpers import audit_count, count, fixture, records
from webapp import jobs
from webapp.config import PROJECT_ROOT
from webapp.jobs import imports as import_jobs
from webapp.models import Asset, AuditAction, AuditEvent, ImportRecord, ImportRun, ImportStatus
from webapp.models.base import utcnow
from webapp.services import audit, imports
from webapp.services.actor import Actor


@pytest.fixture
def rq_app(app, require_redis):  # type: ignore[no-untyped-def]
    app.config["REDIS_URL"] = require_redis
    queue = import_jobs.queue(app)
    queue.empty()
    yield app
    queue.empty()


def test_upload_goes_to_rq_and_a_real_worker_runs_it(rq_app, session):
    run = imports.create_run(session, Actor.cli(), data=fixture("aws_rds_both.json"), filename="rds.json")
    dispatch = import_jobs.dispatch(run)
    assert dispatch == jobs.Dispatch("rq")
    job = import_jobs.queue(rq_app).fetch_job(str(run.id))
    assert job is not None and job.timeout == rq_app.config["IMPORT_JOB_TIMEOUT"]
    assert job.failure_ttl == jobs.FAILURE_TTL
    session.refresh(run)
    assert run.status == ImportStatus.queued
    jobs.work(rq_app, burst=True, simple=True)
    session.expire_all()
    run = imports.get_run(session, run.id)
    assert run.status == ImportStatus.succeeded and run.runner == "rq"
    assert run.created == count(session, Asset) > 0


def test_a_run_enqueued_twice_is_executed_once(rq_app, session):
    run = imports.create_run(session, Actor.cli(), data=fixture("inventory.json"), filename="i.json")
    import_jobs.dispatch(run)
    jobs.work(rq_app, burst=True, simple=True)
    events = audit_count(session)
    # a second delivery of the same job (e.g. requeued by hand) finds the run finished
    import_jobs.queue(rq_app).enqueue(jobs.runner.RQ_JOB, "import", str(run.id), job_id=f"{run.id}-again")
    jobs.work(rq_app, burst=True, simple=True)
    assert audit_count(session) == events
    assert len(records(session, run)) == run.total


def test_without_redis_the_job_runs_on_a_thread(app, session):
    app.config["REDIS_URL"] = None
    run = imports.create_run(session, Actor.cli(), data=fixture("gcp_sql_instances.json"), filename="gcp.json")
    assert import_jobs.dispatch(run) == jobs.Dispatch("thread")
    jobs.wait_for_threads()
    session.expire_all()
    run = imports.get_run(session, run.id)
    assert run.status == ImportStatus.succeeded and run.runner == "thread"
    assert run.created > 0


def test_redis_down_falls_back_to_a_thread_and_says_so(app, session):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    run = imports.create_run(session, Actor.cli(), data=fixture("inventory.json"), filename="i.json")
    dispatch = import_jobs.dispatch(run)
    assert dispatch.runner == "thread" and "Redis" in dispatch.notice
    jobs.wait_for_threads()
    session.expire_all()
    assert imports.get_run(session, run.id).status == ImportStatus.succeeded


def _big_inventory(n: int) -> bytes:
    return json.dumps({"assets": [
        {"name": f"db-{i}", "engine": "postgresql", "host": f"h{i}.example.com", "port": 5432,
         "tags": [f"t{i % 7}"], "owner": f"team-{i % 13}"}
        for i in range(n)
    ]}).encode()


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def processed_after_kill(session, run_id) -> int:  # type: ignore[no-untyped-def]
    """The run's progress, read twice a moment apart: nothing may still be writing."""
    first = imports.get_run(session, run_id).processed
    time.sleep(0.5)
    session.expire_all()
    second = imports.get_run(session, run_id).processed
    assert first == second, "an import process survived the kill"
    return second


def test_kill_the_worker_mid_run_then_reap_and_rerun(app, session, require_postgres, require_redis):
    """SIGKILL the `flask worker` process group while it imports: committed batches are whole,
    the reaper marks the run failed, and a re-run completes with no duplicate asset or audit
    event."""
    app.config["REDIS_URL"] = require_redis
    import_jobs.queue(app).empty()
    total = 20_000
    run = imports.create_run(session, Actor.cli(), data=_big_inventory(total), filename="big.json")
    assert import_jobs.dispatch(run).runner == "rq"
    env = {
        **os.environ,
        "DATABASE_URL": require_postgres,
        "REDIS_URL": require_redis,
        "SECRET_KEY": "kill-test",
        "INVENTORY_ENCRYPTION_KEYS": TEST_KEY,
        "IMPORT_BATCH_SIZE": "250",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "webapp", "worker", "--burst"],
        cwd=PROJECT_ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        processed = 0
        while time.monotonic() < deadline:
            session.expire_all()
            processed = imports.get_run(session, run.id).processed
            if processed >= 1000:
                break
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
            time.sleep(0.02)
        assert processed >= 1000, "the worker never got going"
        # RQ runs the job in a forked "work horse" in a session of its own: kill it and the
        # worker, as a lost machine or an OOM kill would
        for pid in [*_children(worker.pid), worker.pid]:
            os.kill(pid, signal.SIGKILL)
        worker.wait(10)
        time.sleep(0.5)
        session.expire_all()
        assert imports.get_run(session, run.id).processed == processed_after_kill(session, run.id)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        worker.stderr.close()
    session.expire_all()
    dead = imports.get_run(session, run.id)
    assert dead.status == ImportStatus.running and dead.processed < total
    # whole batches only: every processed record has its outcome, asset and audit event
    assert dead.processed % 250 == 0
    assert count(session, ImportRecord, ImportRecord.run_id == run.id) == dead.processed
    assert count(session, Asset) == dead.created == dead.processed
    assert audit_count(session) == dead.created

    assert imports.reap_stale(session, stale_seconds=0) == 1
    session.expire_all()
    dead = imports.get_run(session, run.id)
    assert dead.status == ImportStatus.failed and "heartbeat" in dead.error

    again = imports.retry(session, Actor.cli(), run.id)
    done = imports.execute(session, again.id)
    assert done.status == ImportStatus.succeeded
    assert done.unchanged == dead.created and done.created == total - dead.created
    assert count(session, Asset) == total
    creates = Counter(session.scalars(
        select(AuditEvent.entity_id).where(AuditEvent.action == AuditAction.create)
    ))
    assert len(creates) == total and set(creates.values()) == {1}
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == total
    assert audit.verify(session).ok


def test_uploads_at_once_each_take_their_own_number(app, db, require_postgres):
    """Six uploads at the same moment (as on several servers) are six runs numbered 1 to 6. Two
    used to read the same highest number: the loser's retry lost its stored file, a 500."""
    gate = threading.Barrier(6)
    numbers: list[int] = []
    errors: list[BaseException] = []

    def upload(n: int) -> None:
        with app.app_context():
            gate.wait()
            try:
                numbers.append(imports.create_run(db.session, Actor.cli(), data=_big_inventory(n + 1),
                                                  filename=f"{n}.json").number)
            except BaseException as exc:
                errors.append(exc)
            finally:
                db.session.remove()

    uploads = [threading.Thread(target=upload, args=(n,)) for n in range(6)]
    for thread in uploads:
        thread.start()
    for thread in uploads:
        thread.join(30)
    assert errors == []
    assert sorted(numbers) == [1, 2, 3, 4, 5, 6]


def test_two_runs_of_one_file_at_once_create_each_asset_once(app, session, require_postgres):
    app.config["IMPORT_BATCH_SIZE"] = 100
    data = _big_inventory(1000)
    runs = [imports.create_run(session, Actor.cli(), data=data, filename=f"{n}.json") for n in "ab"]
    for run in runs:
        import_jobs.start_thread(app, run.id)
    jobs.wait_for_threads()
    session.expire_all()
    done = [imports.get_run(session, run.id) for run in runs]
    assert all(run.status == ImportStatus.succeeded for run in done)
    assert sum(run.created for run in done) == 1000 == count(session, Asset)
    assert sum(run.unchanged for run in done) == 1000


@pytest.mark.postgres
def test_a_lost_database_connection_mid_import_says_so(app, session, require_postgres):
    """The server ends the import's connection between two batches (as a restart does): the run
    fails saying the connection was lost, not that the worker was probably killed, and its
    committed batches are kept."""
    from sqlalchemy import create_engine, text

    from webapp.services import imports as import_service
    from webapp.services.actor import Actor

    data = json.dumps({"source": "t", "assets": [
        {"name": f"lost-{i}", "engine": "mysql", "host": f"h{i}.example.com", "port": 3306}
        for i in range(6)]}).encode()
    run = import_service.create_run(session, Actor.cli(), data=data, filename="lost.json")
    killer = create_engine(require_postgres)
    batches = []

    def cut_after_first_batch(current) -> None:  # type: ignore[no-untyped-def]
        if current.processed == 2 and not batches:
            batches.append(current.processed)
            pid = session.connection().connection.driver_connection.info.backend_pid
            with killer.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    try:
        finished = import_service.execute(session, run.id, progress=cut_after_first_batch,
                                          batch_size=2)
    finally:
        killer.dispose()
    assert batches == [2]
    assert finished.status.value == "failed"
    assert finished.error.startswith("The database connection was lost during the import")
    assert "probably" not in finished.error
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Asset)) == 2  # the first batch


# --- reaping and the job as deployed workers know it --------------------------------------------

def _dead_run(session) -> ImportRun:  # type: ignore[no-untyped-def]
    """A run left `running` by a worker that stopped an hour ago."""
    run = imports.create_run(session, Actor.cli(), data=fixture("inventory.json"), filename="dead.json")
    session.execute(update(ImportRun).where(ImportRun.id == run.id).values(
        status=ImportStatus.running, heartbeat_at=utcnow() - timedelta(hours=1)))
    session.commit()
    return run


def test_the_thread_runner_reaps_dead_runs_before_its_job(app, session):
    app.config["REDIS_URL"] = None
    dead = _dead_run(session)
    run = imports.create_run(session, Actor.cli(), data=fixture("gcp_sql_instances.json"), filename="gcp.json")
    assert import_jobs.dispatch(run) == jobs.Dispatch("thread")
    jobs.wait_for_threads()
    session.expire_all()
    assert imports.get_run(session, run.id).status == ImportStatus.succeeded
    dead = imports.get_run(session, dead.id)
    assert dead.status == ImportStatus.failed and "stopped responding" in dead.error


def test_a_worker_reaps_dead_runs_when_it_starts(rq_app, session):
    dead = _dead_run(session)
    jobs.work(rq_app, burst=True, simple=True)
    session.expire_all()
    assert imports.get_run(session, dead.id).status == ImportStatus.failed


def test_a_job_queued_by_the_single_module_jobs_py_still_runs(rq_app, session):
    """Jobs enqueued before the upgrade name `webapp.jobs.run_import_job`."""
    run = imports.create_run(session, Actor.cli(), data=fixture("inventory.json"), filename="i.json")
    import_jobs.queue(rq_app).enqueue("webapp.jobs.run_import_job", str(run.id), job_id=str(run.id))
    jobs.work(rq_app, burst=True, simple=True)
    session.expire_all()
    run = imports.get_run(session, run.id)
    assert run.status == ImportStatus.succeeded and run.runner == "rq" and run.created > 0
