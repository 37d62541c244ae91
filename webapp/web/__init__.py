"""Web plumbing shared by the HTML blueprints: htmx rendering, errors, security, filters."""

from __future__ import annotations

import os

from flask import Flask


def register_web(app: Flask) -> None:
    from webapp.web import errors, filters, navigation, request, security, session, urls

    if app.config.get("TEMPLATE_CACHE_DIR"):
        from jinja2 import FileSystemBytecodeCache

        os.makedirs(app.config["TEMPLATE_CACHE_DIR"], exist_ok=True)
        app.jinja_env.bytecode_cache = FileSystemBytecodeCache(app.config["TEMPLATE_CACHE_DIR"])
    request.init_app(app)
    security.init_app(app)
    session.init_app(app)
    errors.init_app(app)
    filters.init_app(app)
    navigation.init_app(app)
    urls.init_app(app)
