"""API tests: bearer tokens per role, and problem+json checks.

The `client` of tests/conftest.py runs every request in its own application context, as on a
real server; test code reading what a request committed should call `session.expire_all()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from webapp.models import ApiToken, AuditEvent, User
from webapp.services import tokens as token_service
from webapp.services.actor import Actor

ROLES = ("viewer", "analyst", "reviewer", "admin")
PROBLEM = "application/problem+json"


@dataclass
class Issued:
    """A token as a client holds it: the user, the stored row and the secret."""

    user: User
    token: ApiToken
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


@pytest.fixture
def make_token(session, make_user) -> Callable[..., Issued]:  # type: ignore[no-untyped-def]
    """Issue a token for a new user of `role` (or for `user`)."""

    def make(role: str = "admin", *, read_only: bool = False, user: User | None = None,
             name: str | None = None, expires_at: datetime | None = None) -> Issued:
        user = user or make_user(role)
        token, secret = token_service.create(
            session, Actor.system("test"), user, name=name or f"{role}-{'ro' if read_only else 'rw'}",
            read_only=read_only, expires_at=expires_at,
        )
        return Issued(user, token, secret)

    return make


@pytest.fixture
def admin(make_token) -> Issued:  # type: ignore[no-untyped-def]
    return make_token("admin", name="automation")


@pytest.fixture
def audit_count(session) -> Callable[[], int]:  # type: ignore[no-untyped-def]
    def count() -> int:
        session.expire_all()
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0

    return count


def assert_problem(response, status: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The response is an RFC 9457 problem with `status`; return its body."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == PROBLEM, response.mimetype
    body = response.get_json(force=True)
    for key in ("type", "title", "status", "detail"):
        assert key in body, (key, body)
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def field_errors(body: dict[str, Any]) -> dict[str, str]:
    """{field: message} from a validation problem's `errors` list."""
    errors = body.get("errors")
    assert isinstance(errors, list) and errors, body
    for item in errors:
        assert set(item) == {"field", "message"}, item
    return {e["field"]: e["message"] for e in errors}
