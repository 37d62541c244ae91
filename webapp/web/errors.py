"""Domain errors and HTTP errors, rendered in the app's layout (never a traceback)."""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from webapp.services.errors import DomainError, ValidationFailed
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
}


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
    return render(
        "errors/error.html", "content", status=status,
        status_code=status, title=title, message=message, errors=errors or {},
    )


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
        if status == 413:
            message = (
                f"The upload is larger than the limit of {app.config['MAX_UPLOAD_MB']} MB."
            )
        return error_page(status, exc.name, message)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_page(500, "Server error", MESSAGES[500])
