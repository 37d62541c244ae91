"""Liveness and readiness probes (no authentication)."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import text

from webapp.api import schemas
from webapp.api.parsing import ApiBlueprint as Blueprint
from webapp.extensions import db

blp = Blueprint("api_health", __name__, description="Health probes.")


@blp.route("/healthz", methods=["GET"])
@blp.response(200, schemas.Health)
def healthz():  # type: ignore[no-untyped-def]
    """The process answers."""
    return {"status": "ok", "checks": {}}


def _migrations_at_head() -> str:
    config = current_app.extensions["migrate"].migrate.get_config()
    heads = set(ScriptDirectory.from_config(config).get_heads())
    with db.engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return "ok" if current == heads else f"at {sorted(current) or 'none'}, head is {sorted(heads)}"


def _redis() -> str:
    from redis import Redis

    client = Redis.from_url(current_app.config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


@blp.route("/readyz", methods=["GET"])
@blp.response(200, schemas.Health)
@blp.alt_response(503, schema=schemas.Health, description="Not ready: see checks.")
def readyz():  # type: ignore[no-untyped-def]
    """Ready to serve: the database answers, migrations are at head, Redis answers when configured."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
        checks["migrations"] = _migrations_at_head()
    except Exception as exc:  # any failure means not ready; say which
        db.session.rollback()
        checks["database"] = f"error: {exc.__class__.__name__}"
    if current_app.config.get("REDIS_URL"):
        try:
            checks["redis"] = _redis()
        except Exception as exc:
            checks["redis"] = f"error: {exc.__class__.__name__}"
    ok = all(v == "ok" for v in checks.values())
    return {"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503
