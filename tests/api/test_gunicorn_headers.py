"""Oversized headers through the real production server: gunicorn with the app's config passes
headers up to 64 KB, and the app answers one over 8 KB with its own 431 (problem+json on the
API), not gunicorn's bare HTML page."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(sqlite_template, tmp_path_factory):  # type: ignore[no-untyped-def]
    db = tmp_path_factory.mktemp("gunicorn") / "inventory.db"
    shutil.copy(sqlite_template, db)
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "SECRET_KEY": "test-secret",
           "INVENTORY_ENCRYPTION_KEYS": "", "REDIS_URL": ""}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [str(gunicorn), "-c", "python:webapp.gunicorn_conf", "wsgi:app", "--bind", f"127.0.0.1:{port}",
         "--workers", "1"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.2)
    yield port
    proc.terminate()
    proc.wait(10)
    if proc.stderr:
        proc.stderr.close()


def _get(port: int, path: str, headers: dict[str, str]) -> tuple[int, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read().decode()
    finally:
        conn.close()


def test_a_bearer_header_over_8_kb_is_a_problem_json_431(server):
    status, content_type, body = _get(server, "/api/v1/assets", {"Authorization": "Bearer " + "x" * 10_000})
    assert status == 431 and content_type == "application/problem+json", body[:300]
    assert "Authorization header is larger than this server accepts (8 KB)" in body


def test_a_normal_bad_token_is_a_problem_json_401(server):
    status, content_type, _ = _get(server, "/api/v1/assets", {"Authorization": "Bearer nonsense"})
    assert status == 401 and content_type == "application/problem+json"


def test_a_page_with_an_oversized_header_gets_the_apps_own_431(server):
    status, content_type, body = _get(server, "/login", {"X-Padding": "y" * 9_000})
    assert status == 431 and content_type.startswith("text/html")
    assert "larger than this server accepts" in body
