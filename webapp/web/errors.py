"""Domain errors and HTTP errors, rendered in the app's layout (never a traceback)."""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, current_app, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from webapp.extensions import db
from webapp.services.errors import DomainError, ValidationFailed, is_connection_error
from webapp.web.htmx import render
from webapp.web.session import is_api_request

log = logging.getLogger(__name__)

MESSAGES = {
    400: "The request could not be understood.",
    403: "You do not have permission to do this.",
    404: "There is nothing at this address.",
    405: "This address does not accept that kind of request.",
    413: "The upload is larger than this server accepts.",
    422: "Some of the data sent is not valid.",
    429: "Too many requests. Wait a moment and try again.",
    500: "Something went wrong on our side. The error has been logged.",
    503: "The database is not answering; try again shortly.",
}
RETRY_AFTER_SECONDS = 5


def problem(status: int, title: str, detail: str, errors: dict[str, str] | None = None) -> Response:
    """An RFC 9457 problem+json response, the API's error format."""
    body: dict[str, object] = {
        "type": "about:blank", "title": title, "status": status, "detail": detail,
    }
    if errors:
        body["errors"] = [{"field": f, "message": m} for f, m in errors.items()]
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _flatten(messages: object, prefix: str = "") -> dict[str, str]:
    """webargs/marshmallow messages ({"json": {"port": ["..."]}}) as {field: message}."""
    flat: dict[str, str] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = str(key) if key not in ("json", "query", "form", "files", "headers") else ""
            path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            flat.update(_flatten(value, path))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "body"] = " ".join(messages)
    elif isinstance(messages, list):
        for i, value in enumerate(messages):
            flat.update(_flatten(value, f"{prefix}[{i}]"))
    else:
        flat[prefix or "body"] = str(messages)
    return flat


def error_page(status: int, title: str, message: str, errors: dict[str, str] | None = None) -> Response:
    if is_api_request():
        return problem(status, title, message, errors)
    try:
        return render(
            "errors/error.html", "content", status=status,
            status_code=status, title=title, message=message, errors=errors or {},
        )
    except Exception as exc:  # the layout reads the user and counts from the database
        _rollback()
        if is_connection_error(exc):
            return fatal_page(503, "Database unavailable", MESSAGES[503])
        log.exception("the error page failed for a %s", status)
        return fatal_page(status, title, message)


def _rollback() -> None:
    """End the request's failed transaction, so nothing after the error meets a session in
    PendingRollbackError; a dead connection cannot even roll back, which is fine."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone; the pool replaces it
        log.debug("rollback after an error failed", exc_info=True)


def fatal_page(status: int, title: str, message: str) -> Response:
    """The 500 and 503 answers: rendered without the database (no user, no counts), since the
    database may be why we are here."""
    if is_api_request():
        response = problem(status, title, message)
    else:
        try:
            # straight from the Jinja environment: no context processors, since Flask-Login's
            # would load the signed-in user from the database that is not answering
            body = current_app.jinja_env.get_template("errors/fatal.html").render(
                status_code=status, title=title, message=message, request=request)
        except Exception:  # noqa: BLE001 - a template fault must not hide the real error
            log.exception("the error page itself failed")
            body = f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{message}</p>"
        response = Response(body, status=status, mimetype="text/html")
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError) -> Response:
        errors = exc.errors if isinstance(exc, ValidationFailed) else None
        return error_page(exc.status, exc.title, exc.message, errors)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Response:
        return error_page(
            400, "Form expired",
            "The form was not sent from this site or has expired. Reload the page and try again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        messages = (getattr(exc, "data", None) or {}).get("messages")
        if messages is not None:  # request validation by the API schemas
            return error_page(422, "Validation failed", "The request is not valid.", _flatten(messages))
        message = MESSAGES.get(status, exc.description or "")
        if status == 431:
            message = exc.description or ""
        if status == 413:
            message = (
                f"The upload is larger than the limit of {app.config['MAX_UPLOAD_MB']} MB."
            )
        return error_page(status, exc.name, message)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        _rollback()
        if is_connection_error(exc):
            log.warning("database unavailable on %s %s: %s", request.method, request.path,
                        exc.__class__.__name__)
            return fatal_page(503, "Database unavailable", MESSAGES[503])
        log.exception("unhandled error on %s %s", request.method, request.path)
        return fatal_page(500, "Server error", MESSAGES[500])
