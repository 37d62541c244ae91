"""Bulk actions as jobs (SPEC §5): a change set of more than 1,000 assets runs on the job
runner (RQ with a real worker, or a thread), in committed batches, with its progress on the row."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from webapp import jobs
from webapp.jobs import change_sets as change_set_jobs
from webapp.models import Asset, AuditEvent, ChangeSet, ChangeSetStatus
from webapp.models.base import utcnow
from webapp.services import asset_search, audit, change_sets, imports
from webapp.services.actor import Actor

N = 1_200  # over the 1,000 a request applies itself


@pytest.fixture
def rq_app(app, require_redis):  # type: ignore[no-untyped-def]
    app.config.update(REDIS_URL=require_redis, BULK_BATCH_SIZE=500)
    queue = jobs.runner.queue(change_set_jobs.QUEUE, app)
    queue.empty()
    yield app
    queue.empty()


def _inventory(session, n: int) -> None:  # type: ignore[no-untyped-def]
    records = [{"name": f"job-{i:05d}", "engine": "mysql", "host": f"j{i}.example.com", "port": 3306,
                "owner": f"team-{i % 5}"} for i in range(n)]
    run = imports.create_run(session, Actor.cli(), data=json.dumps(records).encode(), filename="n.json")
    assert imports.execute(session, run.id).status.value == "succeeded"


def _owners(session) -> dict[uuid.UUID, str | None]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return dict(session.execute(select(Asset.id, Asset.owner)).tuples().all())


def test_a_large_bulk_change_and_its_undo_run_on_a_real_worker(rq_app, client, session, make_token):
    _inventory(session, N)
    before = _owners(session)
    token = make_token("analyst")
    response = client.post("/api/v1/assets/bulk", headers=token.headers,
                           json={"filter": {"q": "job-"}, "set": {"owner": "dba@example.com"}})
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["status"] == "queued" and body["progress"] == {"processed": 0, "total": N, "percent": 0}
    job = jobs.runner.queue(change_set_jobs.QUEUE, rq_app).fetch_job(body["id"])
    assert job is not None and job.timeout == rq_app.config["BULK_JOB_TIMEOUT"]

    jobs.work(rq_app, burst=True, simple=True)
    done = client.get(response.headers["Location"], headers=token.headers).get_json()
    assert done["status"] == "succeeded" and done["changed"] == N
    assert done["progress"] == {"processed": N, "total": N, "percent": 100}
    session.expire_all()
    assert session.get(ChangeSet, uuid.UUID(body["id"])).runner == "rq"
    assert set(_owners(session).values()) == {"dba@example.com"}
    events = session.scalar(select(func.count()).select_from(AuditEvent)
                            .where(AuditEvent.change_set_id == uuid.UUID(body["id"])))
    assert events == N

    undo = client.post(f"/api/v1/change-sets/{body['id']}/undo", headers=token.headers)
    assert undo.status_code == 202 and undo.get_json()["status"] == "queued"
    jobs.work(rq_app, burst=True, simple=True)
    reverse = client.get(undo.headers["Location"], headers=token.headers).get_json()
    assert reverse["status"] == "succeeded" and reverse["changed"] == N
    assert _owners(session) == before
    assert audit.verify(session).ok


def test_without_redis_a_large_change_runs_on_a_thread(app, session):
    app.config.update(REDIS_URL=None, BULK_BATCH_SIZE=400)
    _inventory(session, N)
    actor = Actor(user_id=None, label="analyst@example.com")
    selection = change_sets.Selection.of_filter(asset_search.parse_query({}), {})
    preview = change_sets.create(session, actor, selection, change_sets.BulkAction.parse(add_tags=["bulk"]))
    queued = change_sets.apply(session, actor, preview.id)
    assert not change_sets.runs_inline(queued)
    assert change_set_jobs.dispatch(queued) == jobs.Dispatch("thread")
    jobs.wait_for_threads()
    session.expire_all()
    done = change_sets.get(session, queued.id)
    assert done.status is ChangeSetStatus.succeeded and done.runner == "thread"
    assert (done.processed, done.changed) == (N, N)


def test_a_change_set_left_running_by_a_dead_worker_is_reaped(app, session):
    app.config["REDIS_URL"] = None
    _inventory(session, 3)
    actor = Actor(user_id=None, label="analyst@example.com")
    ids = list(session.scalars(select(Asset.id)))
    preview = change_sets.create(session, actor, change_sets.Selection.of_ids(ids),
                                 change_sets.BulkAction.parse({"status": "inactive"}))
    change_sets.apply(session, actor, preview.id)
    session.execute(ChangeSet.__table__.update().values(status="running", heartbeat_at=utcnow()))
    session.commit()
    app.config["BULK_STALE_SECONDS"] = -1
    assert jobs.runner.reap_all(session) >= 1
    session.expire_all()
    dead = change_sets.get(session, preview.id)
    assert dead.status is ChangeSetStatus.failed and "stopped" in dead.error
