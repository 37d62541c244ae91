"""The embedded default under a small team's load: on a SQLite file, people's edits, an audited
read of a secret and page views run on threads while an import job runs on its in-process thread
(as under `make run`: one gunicorn process, several threads). Nothing may fail with "database is
locked" (WAL, the busy timeout: webapp/extensions.py) nor fork the audit chain (its appends take
the write lock before reading the last hash: `bulk.append_lock`)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
import traceback

import pytest
from sqlalchemy import func, select, text

from tests.conftest import PASSWORD, IsolatedClient, base_config
from webapp import create_app
from webapp.extensions import SQLITE_BUSY_TIMEOUT_MS
from webapp.extensions import db as _db
from webapp.jobs import imports as import_jobs
from webapp.jobs import runner
from webapp.models import Asset, ImportStatus
from webapp.services import assets, audit, auth, imports
from webapp.services.actor import Actor

RECORDS = 2500  # one import batch: its write transaction holds the lock for seconds
EDITORS = 3
PAGE_VIEWERS = 2


@pytest.fixture
def file_app(sqlite_template, tmp_path):  # type: ignore[no-untyped-def]
    """An app on a SQLite file whatever TEST_DATABASE_URL says, jobs on threads (no Redis)."""
    path = tmp_path / "inventory.db"
    shutil.copy(sqlite_template, path)
    app = create_app({**base_config(f"sqlite:///{path}"), "REDIS_URL": None,
                      "IMPORT_BATCH_SIZE": RECORDS})
    app.test_client_class = IsolatedClient  # each request in its own app context, as a server's
    with app.app_context():
        yield app
        runner.wait_for_threads()
        _db.session.remove()
        _db.engine.dispose()


def test_every_sqlite_connection_is_in_wal_with_a_busy_timeout(file_app):
    with _db.engine.connect() as conn:
        assert conn.scalar(text("PRAGMA journal_mode")) == "wal"
        assert conn.scalar(text("PRAGMA busy_timeout")) == SQLITE_BUSY_TIMEOUT_MS
        assert conn.scalar(text("PRAGMA synchronous")) == 1  # NORMAL


def _inventory(n: int) -> bytes:
    return json.dumps({"source": "cmdb", "assets": [
        {"name": f"imported-{i}", "engine": "mysql", "host": f"imported{i}.example.com",
         "port": 3306, "environment": "production", "owner": "team@example.com"}
        for i in range(n)]}).encode()


def test_edits_page_views_and_an_import_thread_never_find_the_database_locked(file_app):
    app, session, system = file_app, _db.session, Actor.system("test")
    auth.create_user(session, system, email="admin@example.com", password=PASSWORD, role="admin")
    own = [assets.create(session, system, {"name": f"edited-{k}", "engine": "postgresql",
                                           "host": f"edited{k}.example.com", "port": 5432}).id
           for k in range(EDITORS)]
    secret = assets.create(session, system, {"name": "with-secret", "engine": "postgresql",
                                             "host": "secret.example.com", "port": 5432,
                                             "connection_string": "postgresql://u:p@secret/db"}).id
    run_id = imports.create_run(session, Actor.cli(), data=_inventory(RECORDS),
                                filename="cmdb.json").id
    session.remove()

    errors: list[str] = []
    done = {"edits": 0, "reveals": 0, "pages": 0}
    stop = threading.Event()

    def person(name: str, step) -> None:  # type: ignore[no-untyped-def]
        with app.app_context():
            i = 0
            while not stop.is_set():
                try:
                    step(i)
                except Exception:
                    errors.append(f"{name}: {traceback.format_exc(limit=1)}")
                    _db.session.rollback()
                finally:
                    _db.session.remove()
                i += 1

    def editor(k: int):  # type: ignore[no-untyped-def]
        actor = Actor.system(f"editor-{k}")

        def step(i: int) -> None:
            assets.create(_db.session, actor, {"name": f"new-{k}-{i}", "engine": "postgresql",
                                               "host": f"new{k}-{i}.example.com", "port": 5432})
            assets.update(_db.session, actor, own[k], {"notes": f"edit {i}"}, expected_version=None)
            done["edits"] += 1

        return step

    def revealer(i: int) -> None:  # an audit event is its only write
        assets.reveal_connection_string(_db.session, Actor.system("admin"), secret)
        done["reveals"] += 1
        time.sleep(0.05)

    def viewer(k: int):  # type: ignore[no-untyped-def]
        client = app.test_client()
        signed_in = client.post("/login", data={"email": "admin@example.com", "password": PASSWORD})
        assert signed_in.status_code == 302

        def step(i: int) -> None:
            response = client.get("/assets")
            if response.status_code != 200:
                errors.append(f"viewer {k}: GET /assets answered {response.status_code} {response.headers.get('Location')}")
            done["pages"] += 1

        return step

    people = ([threading.Thread(target=person, args=(f"editor {k}", editor(k))) for k in range(EDITORS)]
              + [threading.Thread(target=person, args=("revealer", revealer))]
              + [threading.Thread(target=person, args=(f"viewer {k}", viewer(k)))
                 for k in range(PAGE_VIEWERS)])
    job = import_jobs.start_thread(app, run_id)
    for thread in people:
        thread.start()
    job.join(300)  # type: ignore[attr-defined]
    stop.set()
    for thread in people:
        thread.join(120)

    assert errors == [], f"{len(errors)} failures, the first: {errors[0]}"
    assert min(done.values()) > 0, done
    session.expire_all()
    finished = imports.get_run(session, run_id)
    assert finished.status == ImportStatus.succeeded and finished.created == RECORDS
    assert session.scalar(select(func.count()).select_from(Asset)) == (
        EDITORS + 1 + RECORDS + done["edits"])
    assert audit.verify(session).ok


def test_pysqlite_still_begins_transactions_itself(file_app):
    """The legacy transaction control the design relies on (a transaction begins right before
    its first write; reads before it hold no lock): Python 3.16 changes the default."""
    with _db.engine.connect() as conn:
        dbapi = conn.connection.dbapi_connection
        assert isinstance(dbapi, sqlite3.Connection) and dbapi.isolation_level == ""
