"""A real HTTP server for browser tests: the test app, with CSRF on, on a random local port."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from webapp import create_app
from webapp.extensions import db as _db


@pytest.fixture
def live_server(app_config: dict[str, object]) -> Iterator[str]:
    """Serve a fresh app (empty test database, CSRF enabled) and yield its base URL."""
    app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        with app.app_context():
            _db.session.remove()
            _db.engine.dispose()
