"""`Undo this import` of a large import (SPEC §5, §11): more than 1,000 assets, so the undo runs
as a change set job on a real RQ worker, in committed batches."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from webapp import jobs
from webapp.jobs import change_sets as change_set_jobs
from webapp.models import Asset, AuditEvent, ChangeSet, ChangeSetKind, ChangeSetStatus
from webapp.services import audit, imports
from webapp.services.actor import Actor

N = 900  # existing assets the import updates; it creates as many again: 1,800 steps


@pytest.fixture
def rq_app(app, require_redis):  # type: ignore[no-untyped-def]
    app.config.update(REDIS_URL=require_redis, BULK_BATCH_SIZE=500)
    queue = jobs.runner.queue(change_set_jobs.QUEUE, app)
    queue.empty()
    yield app
    queue.empty()


def _import(session, records: list[dict]):  # type: ignore[no-untyped-def]
    run = imports.create_run(session, Actor.cli(), data=json.dumps(records).encode(), filename="n.json")
    run = imports.execute(session, run.id, batch_size=400)
    assert run.status.value == "succeeded"
    return run


def test_a_large_import_is_undone_by_a_worker(rq_app, client, session, login_as):
    record = {"engine": "mysql", "port": 3306, "owner": "team-old"}
    _import(session, [{**record, "name": f"old-{i:04d}", "host": f"o{i}.example.com"} for i in range(N)])
    run = _import(session, [{**record, "name": f"old-{i:04d}", "host": f"o{i}.example.com", "owner": "team-new"}
                            for i in range(N)]
                  + [{**record, "name": f"new-{i:04d}", "host": f"n{i}.example.com"} for i in range(N)])
    assert (run.created, run.updated) == (N, N)
    login_as("analyst")

    response = client.post(f"/imports/{run.id}/undo")
    assert response.status_code == 303
    session.expire_all()
    undo = session.scalars(select(ChangeSet).where(ChangeSet.kind == ChangeSetKind.undo)).one()
    assert undo.status is ChangeSetStatus.queued and undo.total == 2 * N
    jobs.work(rq_app, burst=True, simple=True)

    session.expire_all()
    undo = session.get(ChangeSet, undo.id)
    assert undo.status is ChangeSetStatus.succeeded and undo.runner == "rq", undo.error
    assert (undo.changed, undo.refused, undo.processed) == (2 * N, 0, 2 * N)
    owners = dict(session.execute(select(Asset.name, Asset.owner).where(Asset.deleted_at.is_(None))).tuples().all())
    assert len(owners) == N and set(owners.values()) == {"team-old"}
    assert session.scalar(select(func.count()).select_from(Asset).where(Asset.deleted_at.is_not(None))) == N
    assert session.scalar(select(func.count()).select_from(AuditEvent)
                          .where(AuditEvent.change_set_id == undo.id)) == 2 * N
    assert audit.verify(session).ok
    page = client.get(f"/change-sets/{undo.id}").get_data(as_text=True)
    assert f"Undo of import #{run.number}" in page
