"""Web plumbing shared by the HTML blueprints: htmx rendering, errors, security, filters."""

from __future__ import annotations

from flask import Flask


def register_web(app: Flask) -> None:
    from webapp.web import errors, filters, navigation, request, security, session

    request.init_app(app)
    security.init_app(app)
    session.init_app(app)
    errors.init_app(app)
    filters.init_app(app)
    navigation.init_app(app)
