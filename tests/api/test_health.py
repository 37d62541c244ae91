"""/healthz (liveness) and /readyz (database, Redis when configured, migrations at head)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from tests.conftest import base_config, migrate_to_head
from webapp import create_app
from webapp.config import PROJECT_ROOT
from webapp.extensions import db as _db

CLOSED_REDIS = "redis://127.0.0.1:1/0"


def _heads() -> tuple[str, str]:
    """The head revision and the one before it."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    script = ScriptDirectory.from_config(config)
    head = script.get_revision(script.get_current_head())
    assert isinstance(head.down_revision, str), "the head has no single previous revision"
    return head.revision, head.down_revision


def _readyz(config: dict[str, object]):  # type: ignore[no-untyped-def]
    """GET /readyz on an app built from `config`; the app's pool is closed afterwards."""
    app = create_app(config)
    with app.app_context():
        response = app.test_client().get("/readyz")
        _db.session.remove()
        _db.engine.dispose()
    return response


def _stamp(url: str, revision: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


def test_healthz_answers_without_a_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {}}
    # liveness does not touch the database: it answers even when there is none
    broken = create_app(base_config("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    assert broken.test_client().get("/healthz").status_code == 200


def test_readyz_is_ok_with_database_and_migrations_at_head(client, app):
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok" and body["checks"]["migrations"] == "ok"
    assert ("redis" in body["checks"]) == bool(app.config.get("REDIS_URL"))
    assert set(body["checks"].values()) == {"ok"}


def test_readyz_checks_a_live_redis(app_config, require_redis):
    response = _readyz({**app_config, "REDIS_URL": require_redis})
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["checks"]["redis"] == "ok"


def test_readyz_is_503_when_redis_does_not_answer(app_config):
    response = _readyz({**app_config, "REDIS_URL": CLOSED_REDIS})
    assert response.status_code == 503
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"].startswith("error")
    assert body["checks"]["database"] == "ok" and body["checks"]["migrations"] == "ok"
    assert "127.0.0.1:1" not in response.get_data(as_text=True)  # no connection details


def test_readyz_is_503_when_the_database_does_not_answer(app_config):
    config = {**app_config, "SQLALCHEMY_DATABASE_URI":
              "postgresql+psycopg://postgres@127.0.0.1:1/inventory?connect_timeout=2"}
    response = _readyz(config)
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["checks"]["database"].startswith("error")
    assert "postgres@" not in response.get_data(as_text=True)


def test_readyz_is_503_when_sqlite_migrations_are_behind(sqlite_template: Path, tmp_path: Path):
    head, previous = _heads()
    path = tmp_path / "behind.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    _stamp(url, previous)
    response = _readyz(base_config(url))
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["database"] == "ok"
    assert previous in body["checks"]["migrations"] and head in body["checks"]["migrations"]

    _stamp(url, head)
    assert _readyz(base_config(url)).status_code == 200


def test_readyz_is_503_on_a_fresh_sqlite_file_before_migrating(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    response = _readyz(base_config(url))
    assert response.status_code == 503
    assert response.get_json()["checks"]["migrations"] != "ok"
    migrate_to_head(url)
    assert _readyz(base_config(url)).status_code == 200


@pytest.mark.postgres
def test_readyz_is_503_when_postgres_migrations_are_behind(require_postgres,
                                                            admin_url_for_new_database):
    head, previous = _heads()
    url = admin_url_for_new_database()
    migrate_to_head(url)
    assert _readyz(base_config(url)).status_code == 200
    _stamp(url, previous)
    response = _readyz(base_config(url))
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["database"] == "ok"
    assert previous in body["checks"]["migrations"]
