"""Fixtures: app, client, runner, login_as(role), db session, and the real-server switches.

The suite runs on SQLite by default. With TEST_DATABASE_URL (PostgreSQL) every database test runs
there instead. Tests that need PostgreSQL, Redis or Chromium and cannot have them are skipped
and listed loudly at the end; under CI=true they fail instead.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from cryptography.fernet import Fernet
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from webapp import create_app
from webapp.config import COUNTS_CACHE_PREFIX
from webapp.extensions import db as _db
from webapp.models import ApiToken, Role, User
from webapp.services import auth as auth_service
from webapp.services import tokens as token_service
from webapp.services.actor import Actor

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or None
REDIS_URL = os.environ.get("REDIS_URL") or None
# `make test` runs the suite on pytest-xdist workers (gw0, gw1, …): each has a database of its
# own beside TEST_DATABASE_URL's (inventory_ci_gw1, created when missing) and a Redis database
# of its own counted down from REDIS_URL's, as two pytest runs must never share either
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")


def _worker_urls(database_url: str | None, redis_url: str | None, worker: str) -> tuple[str | None, str | None]:
    number = int(worker.removeprefix("gw"))
    if database_url:
        url = make_url(database_url)
        database_url = url.set(database=f"{url.database}_{worker}").render_as_string(hide_password=False)
    if redis_url:
        parts = urlsplit(redis_url)
        db = int(parts.path.strip("/") or 0)
        redis_url = urlunsplit(parts._replace(path=f"/{(db - number) % 16}"))
    return database_url, redis_url


if XDIST_WORKER:
    TEST_DATABASE_URL, REDIS_URL = _worker_urls(TEST_DATABASE_URL, REDIS_URL, XDIST_WORKER)
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_KEY = Fernet.generate_key().decode()
PASSWORD = "correct horse battery staple"
# compiled templates shared by the run's ~3,000 apps: each new app compiled the ~90 templates it
# rendered again, most of a page test's time
TEMPLATE_CACHE_DIR = tempfile.mkdtemp(prefix="inventory-test-templates-")
atexit.register(shutil.rmtree, TEMPLATE_CACHE_DIR, ignore_errors=True)

_missing: Counter[str] = Counter()


def need(what: str, available: bool, how: str) -> None:
    """Skip (or, in CI, fail) a test whose real server or browser is missing."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but not available ({how})", pytrace=False)
    _missing[f"{what} ({how})"] += 1
    pytest.skip(f"needs {what}: {how}")


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    backend = "PostgreSQL" if TEST_DATABASE_URL else "SQLite"
    terminalreporter.write_sep("=", f"database tests ran on {backend}", bold=True)
    if _missing:
        terminalreporter.write_sep("!", "SKIPPED FOR LACK OF A REAL SERVER OR BROWSER", red=True)
        for what, n in sorted(_missing.items()):
            terminalreporter.write_line(f"  {n} test(s) skipped: {what}", red=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_config(database_url: str) -> dict[str, object]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "INVENTORY_ENCRYPTION_KEYS": [TEST_KEY],
        "INVENTORY_ENCRYPTION_PASSPHRASE": None,
        "WTF_CSRF_ENABLED": False,
        "SESSION_COOKIE_SECURE": False,
        "REDIS_URL": REDIS_URL,
        "LOGIN_MAX_FAILURES": 5,
        "LOGIN_IP_MAX_FAILURES": 20,
        "LOGIN_LOCKOUT_SECONDS": 900,
        "TEMPLATE_CACHE_DIR": TEMPLATE_CACHE_DIR,
    }


def migrate_to_head(database_url: str) -> None:
    from flask_migrate import upgrade

    app = create_app(base_config(database_url))
    with app.app_context():
        upgrade()
        _db.engine.dispose()


def _create_database(database_url: str) -> None:
    url = make_url(database_url)
    server = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": url.database}):
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    server.dispose()


@pytest.fixture(scope="session")
def pg_url() -> str | None:
    """The PostgreSQL test database, migrated to head once per run (None without one)."""
    if not TEST_DATABASE_URL:
        return None
    if XDIST_WORKER:
        _create_database(TEST_DATABASE_URL)
    engine = create_engine(TEST_DATABASE_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    migrate_to_head(TEST_DATABASE_URL)
    return TEST_DATABASE_URL


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; each test gets a copy."""
    path = tmp_path_factory.mktemp("db") / "template.db"
    migrate_to_head(f"sqlite:///{path}")
    return path


# every sequence a test has drawn from (a rolled-back insert draws too): restarted, as TRUNCATE …
# RESTART IDENTITY restarted the tables' own
USED_SEQUENCES = "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' AND last_value IS NOT NULL"
_engines: dict[str, Any] = {}


def _truncate_all(url: str) -> None:
    """Empty every table and restart the sequences, as TRUNCATE … RESTART IDENTITY would, but
    touching only the tables that hold rows and the sequences that were used: one query finds
    each. (TRUNCATE of all ~45 tables cost 250-800 ms a test, most of it for empty tables.)"""
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=True)
    with engine.begin() as conn:
        tables = [
            r[0]
            for r in conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
            )
        ]
        if not tables:
            return
        probe = " UNION ALL ".join(
            f"(SELECT '{t}' FROM \"{t}\" LIMIT 1)" for t in tables)
        filled = [r[0] for r in conn.execute(text(probe))]
        for (sequence,) in conn.execute(text(USED_SEQUENCES)).all():
            conn.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))
        if not filled:
            return
        # audit_events refuses DELETE and TRUNCATE (triggers), and foreign keys are triggers too:
        # as a replica the session fires none of them. Only this fixture does that: the app's role
        # never could. Every table with rows is emptied, so no reference is left dangling.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in filled:
            conn.execute(text(f'DELETE FROM "{table}"'))


def _forget_cached_counts() -> None:
    """The database was emptied behind the apps' backs: so are the counts they cached in Redis
    (generations and figures; an in-process cache dies with its app)."""
    if not REDIS_URL:
        return
    from redis import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=COUNTS_CACHE_PREFIX + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    _forget_cached_counts()
    pg = request.getfixturevalue("pg_url")
    if pg:
        _truncate_all(pg)
        return pg
    template = request.getfixturevalue("sqlite_template")
    path = tmp_path / "test.db"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_app(sqlite_template: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """An app on SQLite whatever TEST_DATABASE_URL says, for SQLite-specific behaviour."""
    path = tmp_path / "sqlite-only.db"
    shutil.copy(sqlite_template, path)
    app = create_app(base_config(f"sqlite:///{path}"))
    with app.app_context():
        yield app
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture
def app_config(database_url: str) -> dict[str, object]:
    return base_config(database_url)


class IsolatedClient(FlaskClient):
    """A test client whose every request runs in its own application context.

    The `app` fixture keeps an application context pushed for the whole test, and Flask reuses a
    pushed context for test-client requests: without this, every request of a test would share
    one `g` (Flask-Login caches the signed-in user there) and one database session, so a revoked
    session could still look signed in. Tests reading the database after a request should call
    `session.expire_all()` to see what the request committed.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def app(app_config: dict[str, object]):  # type: ignore[no-untyped-def]
    app = create_app(app_config)
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        # job threads (an import, the outbox dispatcher a commit kicked) end before the database
        # is disposed of and the next test truncates it
        from webapp import jobs

        jobs.wait_for_threads()
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture
def db(app):  # type: ignore[no-untyped-def]
    return _db


@pytest.fixture
def session(db):  # type: ignore[no-untyped-def]
    return db.session


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def runner(app):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()


@pytest.fixture
def make_user(session):  # type: ignore[no-untyped-def]
    def make(role: str = "viewer", email: str | None = None, password: str = PASSWORD):
        return auth_service.create_user(
            session, Actor.system("test"), email=email or f"{role}-{uuid.uuid4().hex[:6]}@example.com",
            password=password, role=role,
        )

    return make


@pytest.fixture
def login_as(client, make_user):  # type: ignore[no-untyped-def]
    """Sign the test client in as a new user with `role`; return the user."""

    def login(role: str = "analyst", test_client=None):  # type: ignore[no-untyped-def]
        user = make_user(role)
        response = (test_client or client).post(
            "/login", data={"email": user.email, "password": PASSWORD}
        )
        assert response.status_code == 302, response.data
        return user

    return login


@dataclass
class Issued:
    """A token as a client holds it: the user, the stored row and the secret."""

    user: User
    token: ApiToken
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


@pytest.fixture
def make_token(session, make_user) -> Callable[..., Issued]:  # type: ignore[no-untyped-def]
    """Issue a token for a new user of `role` (or for `user`)."""

    def make(role: str = "admin", *, read_only: bool = False, user: User | None = None,
             name: str | None = None, expires_at: datetime | None = None) -> Issued:
        user = user or make_user(role)
        token, secret = token_service.create(
            session, Actor.system("test"), user, name=name or f"{role}-{'ro' if read_only else 'rw'}",
            read_only=read_only, expires_at=expires_at,
        )
        return Issued(user, token, secret)

    return make


@pytest.fixture
def require_postgres(pg_url):  # type: ignore[no-untyped-def]
    need("PostgreSQL", bool(pg_url), "set TEST_DATABASE_URL=postgresql+psycopg://…")
    return pg_url


@pytest.fixture
def require_redis():  # type: ignore[no-untyped-def]
    need("Redis", bool(REDIS_URL), "set REDIS_URL=redis://127.0.0.1:6379/0")
    return REDIS_URL


@pytest.fixture(scope="session")
def chromium_path() -> str:
    available = CHROMIUM.exists()
    try:
        import playwright  # noqa: F401
    except ImportError:
        available = False
    need("Chromium", available, "apt-get install chromium; pip install playwright")
    return str(CHROMIUM)


@pytest.fixture
def admin_url_for_new_database():  # type: ignore[no-untyped-def]
    """Create an empty PostgreSQL database on the test server; drop it afterwards."""
    created: list[str] = []
    server = make_url(TEST_DATABASE_URL) if TEST_DATABASE_URL else None

    def make() -> str:
        assert server is not None
        name = f"inventory_empty_{uuid.uuid4().hex[:8]}"
        engine = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        created.append(name)
        return server.set(database=name).render_as_string(hide_password=False)

    yield make
    if server is not None:
        engine = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for name in created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


__all__ = ["PASSWORD", "Role"]
