"""The pool's pre-ping (webapp.extensions.quick_pre_ping): a round trip only when the pooled
connection's socket has news, and a connection the server ended is still replaced before a
request uses it. On the real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from webapp.extensions import QuickPing, db

pytestmark = pytest.mark.postgres


@pytest.fixture
def counted_pings(app, require_postgres):  # type: ignore[no-untyped-def]
    """The real pings the engine's pool sends, counted (the quick check's fallback)."""
    quick = db.engine.dialect.do_ping
    assert isinstance(quick, QuickPing)
    real = quick.ping  # the dialect's own ping
    calls = []

    def counting(dbapi_connection):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(dbapi_connection)

    quick.ping = counting
    db.session.remove()
    db.engine.dispose()
    yield calls
    quick.ping = real


def _backend_pid() -> int:
    pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    db.session.remove()  # back to the pool
    return pid


def test_a_healthy_pooled_connection_is_handed_out_without_a_round_trip(counted_pings):
    first = _backend_pid()
    for _ in range(5):
        assert _backend_pid() == first  # the same pooled connection each time
    assert counted_pings == []


def test_a_connection_the_server_ended_is_replaced_before_a_request_uses_it(counted_pings, database_url):
    first = _backend_pid()
    url = make_url(database_url)
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, dbname=url.database,
                         autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        # the backend is gone once it no longer shows in pg_stat_activity
        for _ in range(100):
            if admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (first,)).fetchone()[0] == 0:
                break
            admin.execute("SELECT pg_sleep(0.02)")
    second = _backend_pid()  # no error: the ping found the ended connection, the pool made a new one
    assert second != first
    assert len(counted_pings) == 1
