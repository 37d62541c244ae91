"""Concurrent writers adding the same new tag all succeed (SPEC §9), with real threads against
PostgreSQL: the API's PATCH and POST, and the page's tag form."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD
from tests.factories import make_asset
from webapp.models import Tag

WRITERS = 10


def _at_once(app, call: Callable[[Any, int], Any], prepare=None) -> list[int]:  # type: ignore[no-untyped-def]
    """Run `call(client, i)` in WRITERS threads released together; their status codes."""
    barrier = threading.Barrier(WRITERS)
    statuses: list[int] = [0] * WRITERS
    clients = [app.test_client() for _ in range(WRITERS)]
    for client in clients:
        if prepare:
            prepare(client)

    def run(i: int) -> None:
        barrier.wait()
        statuses[i] = call(clients[i], i).status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return statuses


def _tag_count(session, name: str) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Tag).where(Tag.name == name))


@pytest.mark.postgres
def test_ten_patches_adding_one_new_tag_all_succeed(app, session, make_token, require_postgres):
    token = make_token("analyst")
    assets = [make_asset(session, name=f"race-{i}") for i in range(WRITERS)]
    ids = [(a.id, a.version) for a in assets]

    def patch(client, i):  # type: ignore[no-untyped-def]
        asset_id, version = ids[i]
        return client.patch(f"/api/v1/assets/{asset_id}", json={"tags": ["brand-new"]},
                            headers={**token.headers, "If-Match": f'"{version}"'})

    assert _at_once(app, patch) == [200] * WRITERS
    assert _tag_count(session, "brand-new") == 1
    for asset in assets:
        session.refresh(asset)
        assert [t.name for t in asset.tags] == ["brand-new"]


@pytest.mark.postgres
def test_ten_creates_with_one_new_tag_all_succeed(app, session, make_token, require_postgres):
    token = make_token("analyst")

    def create(client, i):  # type: ignore[no-untyped-def]
        return client.post("/api/v1/assets", headers=token.headers,
                           json={"name": f"new-{i}", "engine": "mysql", "tags": ["fresh", f"own-{i}"]})

    assert _at_once(app, create) == [201] * WRITERS
    assert _tag_count(session, "fresh") == 1


@pytest.mark.postgres
def test_ten_tag_forms_adding_one_new_tag_all_succeed(app, session, make_user, require_postgres):
    user = make_user("analyst")
    ids = [make_asset(session, name=f"form-{i}").id for i in range(WRITERS)]
    email = user.email

    def sign_in(client):  # type: ignore[no-untyped-def]
        assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302

    def add(client, i):  # type: ignore[no-untyped-def]
        return client.post(f"/assets/{ids[i]}/tags", data={"tag": "shared-new"})

    statuses = _at_once(app, add, sign_in)
    assert all(s in (200, 302, 303) for s in statuses), statuses
    assert _tag_count(session, "shared-new") == 1
