"""Asset Inventory: the application factory."""

from __future__ import annotations

from typing import Any

import psycopg.types.json
from flask import Flask

from webapp.config import PROJECT_ROOT, Config


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app. No database work, no network and no files written here."""
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
        instance_path=str(PROJECT_ROOT / "instance"),
    )
    app.config.from_mapping(Config().as_dict())
    if config:
        app.config.from_mapping(config)
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError(
            "SECRET_KEY is not set. Set it in the environment, or run `make run` once to "
            "generate one into instance/."
        )

    if str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql"):
        # no JIT: the list's searched page is planned with the cost of collecting every match,
        # a branch it rarely runs, and compiling that plan took 155 of its 233 ms
        options = app.config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
        connect_args = options["connect_args"] = dict(options.get("connect_args", {}))
        connect_args.setdefault("options", "-c jit=off")

    from webapp.extensions import csrf, db, login_manager, migrate, quick_pre_ping
    from webapp.services.text import json_loads

    # psycopg parses json and jsonb with orjson where that reads the same values (`json_loads`):
    # a list page parses three JSON columns per row, a tenth of the API list's time with `json`
    psycopg.types.json.set_json_loads(json_loads)
    from webapp.services import cached_counts

    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            quick_pre_ping(engine)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), compare_type=True, render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    cached_counts.init_app(app)

    from webapp.admin import bp as admin_bp
    from webapp.assets import bp as assets_bp
    from webapp.audit import bp as audit_bp
    from webapp.auth import bp as auth_bp
    from webapp.change_sets import bp as change_sets_bp
    from webapp.compliance import bp as compliance_bp
    from webapp.conflicts import bp as conflicts_bp
    from webapp.dashboard import bp as dashboard_bp
    from webapp.imports import bp as imports_bp
    from webapp.notifications import bp as notifications_bp
    from webapp.relationships import bp as relationships_bp

    for bp in (auth_bp, dashboard_bp, assets_bp, change_sets_bp, relationships_bp, imports_bp,
               conflicts_bp, compliance_bp, audit_bp, admin_bp, notifications_bp):
        app.register_blueprint(bp)

    from webapp.api import init_api

    init_api(app)

    # after the API, so our error handlers replace flask-smorest's JSON-only ones
    from webapp.web import register_web

    register_web(app)

    from webapp.cli import register_cli

    register_cli(app)

    from webapp.jobs.scheduler import serve_in_background

    serve_in_background(app)  # SCHEDULER_THREAD: the first request served starts it (not tests)
    return app
