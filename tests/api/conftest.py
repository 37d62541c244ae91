"""API tests: bearer tokens per role, and problem+json checks.

The `client` of tests/conftest.py runs every request in its own application context, as on a
real server; test code reading what a request committed should call `session.expire_all()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import Issued
from webapp.models import AuditEvent

ROLES = ("viewer", "analyst", "reviewer", "admin")
PROBLEM = "application/problem+json"


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
