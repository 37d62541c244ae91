"""A real HTTP server for browser tests: the test app, with CSRF on, on a random local port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from werkzeug.serving import make_server

from webapp import create_app
from webapp.extensions import db as _db

if TYPE_CHECKING:
    from playwright.sync_api import Page


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


def htmx_settled(page: Page) -> None:
    """Wait until htmx has processed what it swapped in.

    Swapped content is visible a moment before htmx binds its triggers (the settle step); a
    change or key press in that moment follows the plain link or form, or does nothing.
    """
    page.wait_for_load_state()
    page.wait_for_function("() => window.htmx && !document.querySelector("
                           "'.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')")
