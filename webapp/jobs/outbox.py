"""The outbox's job kind: run the dispatcher (`services.dispatch.dispatch_pending`) soon after a
commit that wrote outbox events (SPEC §10, §13).

A session listener kicks it once per such commit (`outbox.emit` sets
`session.info[outbox.PENDING]`):

- with `REDIS_URL`: an RQ job on the "notifications" queue. Redis down: nothing runs now and the
  events wait in the outbox for the scheduler's sweep (which calls `dispatch_pending` itself);
  a failed kick is not retried for KICK_BACKOFF seconds, so a dead Redis costs a request at most
  one short connection attempt now and then;
- without it (the embedded default): one dispatcher thread of this process at a time; a kick
  while it runs makes it go round once more.

The kick never raises into, nor waits on, the committing code: errors are logged.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, current_app, has_app_context
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import event
from sqlalchemy.orm import Session

from webapp.extensions import db
from webapp.jobs import runner
from webapp.services import dispatch, outbox

log = logging.getLogger(__name__)

KIND = "outbox_dispatch"
QUEUE = "notifications"
KICK_TIMEOUT = 0.5  # seconds the kick may wait for Redis
KICK_BACKOFF = 30.0  # seconds without kicks after Redis failed to take one

_lock = threading.Lock()
_thread_running = False
_thread_again = False
_redis_failed_at: dict[str, float] = {}  # Redis URL → when it last refused a kick


@runner.register(KIND, queue=QUEUE, default_timeout=15 * 60)
def run(*, runner: str) -> int:
    """Dispatch what is pending; on the thread runner, again while kicks came in meanwhile."""
    global _thread_running, _thread_again
    total = 0
    try:
        while True:
            total += dispatch.dispatch_pending(db.session)
            if runner != "thread":
                return total
            with _lock:
                if not _thread_again:
                    _thread_running = False
                    return total
                _thread_again = False
    except Exception:
        if runner != "thread":
            raise  # RQ keeps the failed job to inspect
        with _lock:
            _thread_running = False
        # nobody waits on this thread: say it in the log; the events wait for the sweep
        log.exception("The outbox dispatcher thread failed (events wait for the sweep)")
        return total
    except BaseException:
        with _lock:
            _thread_running = False
        raise


def kick(app: Flask) -> str | None:
    """Have the dispatcher run soon: "rq", "thread", or None when it will wait for the sweep
    (Redis down) or a running thread takes it. Never raises."""
    global _thread_running, _thread_again
    try:
        url = app.config.get("REDIS_URL")
        if url:
            failed_at = _redis_failed_at.get(url)
            if failed_at is not None and time.monotonic() - failed_at < KICK_BACKOFF:
                return None
            connection = Redis.from_url(url, socket_connect_timeout=KICK_TIMEOUT, socket_timeout=KICK_TIMEOUT)
            try:
                Queue(QUEUE, connection=connection).enqueue(
                    runner.RQ_JOB, KIND, job_timeout=runner.kind(KIND).timeout(app),
                    failure_ttl=runner.FAILURE_TTL, result_ttl=600, description="dispatch the outbox")
            except RedisError as exc:
                _redis_failed_at[url] = time.monotonic()
                log.warning("Redis did not take the outbox dispatch (events wait for the sweep): %s", exc)
                return None
            finally:
                connection.close()
            _redis_failed_at.pop(url, None)
            return "rq"
        with _lock:
            if _thread_running:
                _thread_again = True
                return None
            _thread_running = True
        try:
            runner.run_in_thread(app, KIND)
        except Exception:
            with _lock:
                _thread_running = False
            raise
        return "thread"
    except Exception:
        log.exception("Kicking the outbox dispatcher failed (events wait for the sweep)")
        return None


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if not session.info.pop(outbox.PENDING, None):
        return
    if not has_app_context():  # a script without an app: the sweep dispatches
        return
    kick(current_app._get_current_object())  # type: ignore[attr-defined]


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(outbox.PENDING, None)
