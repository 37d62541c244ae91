"""Web tests: every test-client request runs in its own application context.

The `app` fixture of tests/conftest.py keeps one application context pushed for the whole test.
Flask reuses a pushed context for test-client requests, so without this every request of a test
would share one `g` (Flask-Login caches the signed-in user there, Flask-WTF the CSRF token) and
one database session: a second browser would see the first one's user, and a revoked session
would still look signed in. Here each request gets a fresh context, a fresh `g` and its own
database session, as on a real server. Test code reading the database afterwards should call
`session.expire_all()` (or use a fresh query) to see what the request committed.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient


class IsolatedClient(FlaskClient):
    """A test client whose requests never share `g` or the database session with the test."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def app(app):  # type: ignore[no-untyped-def]
    app.test_client_class = IsolatedClient
    return app
