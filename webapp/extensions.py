"""Extensions, created unbound and attached to an app by `init_app` in the factory."""

import select
import sqlite3
from typing import Any

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import Engine, event

from webapp.models.base import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()

# How long a SQLite statement waits for another connection's write lock before "database is
# locked": longer than the longest write transaction (an import batch of IMPORT_BATCH_SIZE
# records), so a page's write waits for the import's batch instead of failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Every new SQLite connection (the embedded default): WAL, so that readers never wait for
    the writer nor the writer for readers (one writer at a time still); the busy timeout, so
    that writers queue for the lock; synchronous=NORMAL, WAL's durable-on-checkpoint setting
    (a power cut may lose the last commits, never corrupt the file). Other databases: nothing.

    pysqlite's default ("legacy") transaction control stays: it begins a transaction right
    before the first INSERT/UPDATE/DELETE, so a write transaction takes the lock with the busy
    timeout's wait, instead of upgrading a reader's snapshot (which fails at once when another
    writer got in first)."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")  # first: WAL may wait
        cursor.execute("PRAGMA journal_mode = WAL")  # kept in the file; memory databases ignore it
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def quick_pre_ping(engine: Engine) -> None:
    """Make the pool's pre-ping a round trip only when the connection's socket has news.

    `pool_pre_ping` sends `SELECT 1` each time a pooled connection is handed out: one round
    trip per request, a seventh of a list page's database work under 50 clients. A server that
    ends a connection (a restart, `pg_terminate_backend`, an idle timeout, a proxy cut) says so
    on the socket: an error message, then the close, both of which make the idle socket
    readable. So the real ping runs when the socket of an idle connection is readable (or the
    driver already knows it is broken), and is skipped when nothing has arrived since the last
    answer. A server that vanished without a word (a machine lost, no FIN) is found by the
    request's own statement instead, which then invalidates the pool as the ping would have.
    PostgreSQL (psycopg) only; other dialects keep their ping."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return
    engine.dialect.do_ping = QuickPing(engine.dialect.do_ping)  # type: ignore[method-assign]


class QuickPing:
    """A dialect's `do_ping` that calls the real one (`ping`) only when the socket has news."""

    def __init__(self, ping: Any) -> None:
        self.ping = ping

    def __call__(self, dbapi_connection: Any) -> bool:
        pgconn = dbapi_connection.pgconn
        if not dbapi_connection.closed and pgconn.status == 0:  # CONNECTION_OK
            readable, _, _ = select.select([pgconn.socket], [], [], 0)
            if not readable:
                return True
        return bool(self.ping(dbapi_connection))
