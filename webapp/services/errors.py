"""Domain exceptions, mapped once to HTML, htmx and API responses (webapp/web/errors.py)."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class DomainError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.title)
        self.message = message or self.title


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class ValidationFailed(DomainError):
    status = 422
    title = "Validation failed"

    def __init__(self, errors: dict[str, str], message: str | None = None) -> None:
        super().__init__(message or "Please correct the highlighted fields.")
        self.errors = errors


class StaleVersion(DomainError):
    """Someone else saved the record since the caller read it."""

    status = 409
    title = "Edit conflict"

    def __init__(self, current: Any, message: str | None = None) -> None:
        super().__init__(
            message or "Someone else saved this record after you opened it."
        )
        self.current = current


class InvalidState(DomainError):
    status = 409
    title = "Conflict"


class Unavailable(DomainError):
    """A service the request needs (e.g. the job queue) cannot be reached."""

    status = 503
    title = "Service unavailable"


def is_connection_error(exc: BaseException) -> bool:
    """The database cannot be reached (down, restarting, the network, a full pool, SQLite busy):
    a 503 for a request, "the connection was lost" for an import."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError) and isinstance(exc.orig, sqlite3.OperationalError):
        # SQLite's OperationalError also means "no such table": only a busy or missing file
        return any(w in str(exc.orig) for w in ("locked", "unable to open", "disk I/O"))
    return isinstance(exc, OperationalError | InterfaceError | PoolTimeout)
