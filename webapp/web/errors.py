"""Domain errors and HTTP errors, rendered in the app's layout (never a traceback)."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from webapp.services.errors import DomainError, ValidationFailed
from webapp.web.htmx import render

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


def error_page(status: int, title: str, message: str, errors: dict[str, str] | None = None) -> Response:
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
