"""The outbox and its dispatcher (SPEC §10, §13), on PostgreSQL and the real Redis: an event
commits with its change or not at all, is dispatched once however many dispatchers run, a
failing event holds back no other, and Redis being down delays events, never loses them."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, text, update
from sqlalchemy.orm import Session

from tests.imports.helpers import fixture
from webapp import jobs
from webapp.jobs import outbox as outbox_jobs
from webapp.models import ImportRun, ImportStatus, Notification, OutboxEvent, Role
from webapp.models.base import utcnow
from webapp.services import crypto, dispatch, imports, outbox
from webapp.services.actor import Actor

pytestmark = pytest.mark.usefixtures("require_postgres")


def _events(session: Session, **where: object) -> list[OutboxEvent]:
    session.expire_all()
    query = select(OutboxEvent).order_by(OutboxEvent.created_at)
    for name, value in where.items():
        query = query.where(getattr(OutboxEvent, name) == value)
    return list(session.scalars(query))


def _notifications(session: Session, event_id: object) -> list[Notification]:
    return list(session.scalars(select(Notification).where(Notification.event_id == event_id)))


def _stale_run(session: Session, user_id: object) -> ImportRun:
    run = imports.create_run(session, Actor(user_id, "tester"), data=fixture("inventory.json"), filename="i.json")
    session.execute(update(ImportRun).where(ImportRun.id == run.id).values(
        status=ImportStatus.running, heartbeat_at=utcnow() - timedelta(hours=1)))
    session.commit()
    return run


@pytest.fixture
def no_kick(app):  # type: ignore[no-untyped-def]
    """Commits kick no dispatcher (Redis at a closed port): events stay in the outbox until the
    test dispatches them itself."""
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    yield app
    outbox_jobs._redis_failed_at.clear()


def test_an_event_commits_with_its_change_or_not_at_all(session, make_user, no_kick):
    analyst = make_user("analyst")
    run = _stale_run(session, analyst.id)

    def refuse(_session):  # type: ignore[no-untyped-def]
        raise RuntimeError("the commit fails")

    event.listen(session, "before_commit", refuse)
    try:
        with pytest.raises(RuntimeError):
            imports.reap_stale(session, stale_seconds=60)
    finally:
        event.remove(session, "before_commit", refuse)
    session.rollback()
    # the change (the run marked failed) and its event went together
    assert imports.get_run(session, run.id).status == ImportStatus.running
    assert _events(session) == []

    assert imports.reap_stale(session, stale_seconds=60) == 1
    [failed] = _events(session)
    assert failed.kind == "import_failed" and failed.payload["import_id"] == str(run.id)
    assert imports.get_run(session, run.id).status == ImportStatus.failed


def test_dispatch_turns_events_into_notifications_once(session, make_user, no_kick):
    admin, viewer = make_user("admin"), make_user("viewer")
    crypto.rotate(session, Actor(admin.id, admin.email))
    [rotated] = _events(session, kind="key_rotation")
    assert rotated.dispatched_at is None and rotated.min_role == Role.admin
    assert dispatch.dispatch_pending(session) == 1
    session.expire_all()
    assert [n.user_id for n in _notifications(session, rotated.id)] == [admin.id]
    assert rotated.dispatched_at is not None and rotated.attempts == 1
    # nothing left: a second run does nothing
    assert dispatch.dispatch_pending(session) == 0
    assert len(_notifications(session, rotated.id)) == 1
    assert viewer.id not in {n.user_id for n in session.scalars(select(Notification))}


def test_a_dispatcher_skips_events_another_holds(session, db, make_user, no_kick):
    make_user("admin")
    for i in range(6):
        outbox.emit(session, "key_rotation", subject=f"rotation {i}", min_role=Role.admin)
    session.commit()
    ids = [e.id for e in _events(session)]
    # another dispatcher has taken the three oldest (their rows locked, not yet committed)
    other = Session(db.engine)
    try:
        held = list(other.scalars(select(OutboxEvent.id).where(OutboxEvent.id.in_(ids[:3]))
                                  .with_for_update()))
        assert len(held) == 3
        assert dispatch.dispatch_pending(session) == 3
        assert {e.id for e in _events(session) if e.dispatched_at} == set(ids[3:])
    finally:
        other.rollback()
        other.close()
    assert dispatch.dispatch_pending(session) == 3
    assert all(e.attempts == 1 and e.dispatched_at for e in _events(session))


def test_two_dispatchers_at_once_send_each_event_once(app, session, db, make_user, no_kick):
    make_user("admin"), make_user("admin")
    for i in range(120):
        outbox.emit(session, "key_rotation", subject=f"rotation {i}", min_role=Role.admin)
    session.commit()
    done: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def dispatcher() -> None:
        with app.app_context():
            own = Session(db.engine)
            try:
                start.wait()
                done.append(dispatch.dispatch_pending(own, limit=500))
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                own.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(done) == 120
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Notification)) == 240  # 2 admins × 120
    assert session.scalar(select(func.max(OutboxEvent.attempts))) == 1


def test_a_failing_event_holds_back_no_other_and_is_retried(session, make_user, no_kick):
    make_user("admin")
    outbox.emit(session, "key_rotation", subject="first", min_role=Role.admin)
    session.commit()
    outbox.emit(session, "key_rotation", subject="poison", min_role=Role.admin)
    session.commit()
    outbox.emit(session, "key_rotation", subject="last", min_role=Role.admin)
    session.commit()
    # a real database error for one event's notifications: a trigger refuses them
    session.execute(text("""
        CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'poisoned notification refused'; END $$;
        CREATE TRIGGER refuse_poison BEFORE INSERT ON notifications FOR EACH ROW
        WHEN (NEW.subject = 'poison') EXECUTE FUNCTION refuse_poison();
    """))
    session.commit()
    try:
        assert dispatch.dispatch_pending(session) == 2
        by_subject = {e.subject: e for e in _events(session)}
        assert by_subject["first"].dispatched_at and by_subject["last"].dispatched_at
        poison = by_subject["poison"]
        assert poison.dispatched_at is None and poison.attempts == 1
        assert "poisoned notification refused" in poison.last_error
        assert dispatch.dispatch_pending(session) == 0  # still refused: retried, counted
        assert _events(session, subject="poison")[0].attempts == 2
    finally:
        session.rollback()
        session.execute(text("DROP TRIGGER IF EXISTS refuse_poison ON notifications; "
                             "DROP FUNCTION IF EXISTS refuse_poison()"))
        session.commit()
    assert dispatch.dispatch_pending(session) == 1
    poison = _events(session, subject="poison")[0]
    assert poison.dispatched_at and poison.last_error is None and poison.attempts == 3
    assert len(_notifications(session, poison.id)) == 1


def test_redis_down_events_wait_then_go_out(app, session, make_user, require_redis):
    admin = make_user("admin")
    queue = jobs.runner.queue(outbox_jobs.QUEUE, app)
    queue.empty()
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        crypto.rotate(session, Actor(admin.id, admin.email))  # commits: the kick finds no Redis
        jobs.wait_for_threads()
        [waiting] = _events(session)
        assert waiting.dispatched_at is None  # waits in the outbox, nothing fell back to a thread
        assert _notifications(session, waiting.id) == []
    finally:
        app.config["REDIS_URL"] = require_redis
        outbox_jobs._redis_failed_at.clear()
    # Redis is back: the next commit's kick queues the dispatcher, and a worker runs it: both go out
    crypto.rotate(session, Actor(admin.id, admin.email))
    assert queue.count >= 1
    jobs.work(app, burst=True, simple=True)
    events = _events(session)
    assert len(events) == 2 and all(e.dispatched_at for e in events)
    assert all(len(_notifications(session, e.id)) == 1 for e in events)


def test_the_sweep_dispatches_what_waited(app, session, make_user, no_kick):
    admin = make_user("admin")
    crypto.rotate(session, Actor(admin.id, admin.email))
    [waiting] = _events(session)
    assert waiting.dispatched_at is None
    assert dispatch.dispatch_pending(session) == 1  # what the scheduler's sweep calls
    assert len(_notifications(session, waiting.id)) == 1


def test_without_redis_a_commit_dispatches_on_a_thread(app, session, make_user):
    app.config["REDIS_URL"] = None
    admin = make_user("admin")
    crypto.rotate(session, Actor(admin.id, admin.email))
    jobs.wait_for_threads()
    [done] = _events(session)
    assert done.dispatched_at is not None
    assert [n.user_id for n in _notifications(session, done.id)] == [admin.id]


def test_a_rollback_forgets_the_kick(app, session, make_user):
    app.config["REDIS_URL"] = None
    make_user("admin")
    outbox.emit(session, "key_rotation", subject="never", min_role=Role.admin)
    session.rollback()
    assert outbox.PENDING not in session.info
    assert _events(session) == []


def test_a_kick_that_fails_never_breaks_the_commit(app, session, make_user):
    admin = make_user("admin")
    app.config["REDIS_URL"] = "not a redis url"  # Redis.from_url raises ValueError
    try:
        assert crypto.rotate(session, Actor(admin.id, admin.email)) == 0  # committed, no error
    finally:
        app.config["REDIS_URL"] = None
        outbox_jobs._redis_failed_at.clear()
    [waiting] = _events(session)
    assert waiting.kind == "key_rotation" and waiting.dispatched_at is None  # waits for the sweep
