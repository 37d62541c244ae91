"""Keyset pagination under concurrent inserts: walking 1,000 assets 37 at a time while new rows
land before, at and after the current position sees every original row exactly once, in order.
(OFFSET paging would skip or repeat rows here.)"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from webapp.models import Asset
from webapp.services import assets as asset_service
from webapp.services.actor import Actor

ORIGINALS = 1_000
PAGE = 37
SYSTEM = Actor.system("test")


@pytest.fixture
def originals(session) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """1,000 valid assets made through the service (audited, versioned): id -> name."""
    made: dict[str, str] = {}
    engines = ["postgresql", "mysql", "redis", "mongodb"]
    for i in range(ORIGINALS):
        asset = asset_service.create(session, SYSTEM, {
            # letters and digits only, so every collation agrees with Python on the order
            "name": f"m{(i * 7919) % ORIGINALS:04d}",  # created in a scrambled name order
            "engine": engines[i % 4],
            "environment": "production",
        })
        made[str(asset.id)] = asset.name
    session.expunge_all()
    return made


def _new(session, name: str) -> Asset:  # type: ignore[no-untyped-def]
    return asset_service.create(session, SYSTEM, {"name": name, "engine": "sqlite"})


def _set_updated_at(session, asset_id: uuid.UUID, when: datetime) -> None:  # type: ignore[no-untyped-def]
    session.execute(update(Asset).where(Asset.id == asset_id).values(updated_at=when))
    session.commit()


def _insert_around_name(session, last: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:6]
    _new(session, f"a{tag}")  # before everything: already passed
    _new(session, last["name"])  # the same name: before or after, the id decides
    _new(session, f"{last['name']}x")  # just after the current position: still to come
    _new(session, f"z{tag}")  # after everything


def _insert_around_updated_at(session, last: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    position = datetime.fromisoformat(last["updated_at"])
    tag = uuid.uuid4().hex[:6]
    _new(session, f"n{tag}")  # updated now: sorts before the position (newest first)
    tie = _new(session, f"t{tag}")
    _set_updated_at(session, tie.id, position)  # the same instant: the id decides
    soon = _new(session, f"s{tag}")
    _set_updated_at(session, soon.id, position - timedelta(microseconds=1))  # still to come
    old = _new(session, f"o{tag}")
    _set_updated_at(session, old.id, datetime(2000, 1, 1, tzinfo=UTC))  # after everything


@pytest.mark.parametrize("sort", ["name", "-updated_at"])
def test_cursor_walk_sees_every_row_once_while_rows_are_inserted(sort, originals, client, admin,
                                                                 session):
    insert = _insert_around_name if sort == "name" else _insert_around_updated_at
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        url = f"/api/v1/assets?sort={sort}&limit={PAGE}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url, headers=admin.headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        page = response.get_json()
        assert len(page["items"]) <= PAGE
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == PAGE
        insert(session, page["items"][-1])
        assert pages < 200, "the walk does not end"

    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)), "a row was returned twice"
    missing = set(originals) - set(ids)
    assert not missing, f"{len(missing)} original rows were skipped"
    assert sum(1 for i in ids if i in originals) == ORIGINALS
    assert pages >= ORIGINALS // PAGE

    # and the walk is in order, ties broken by id
    if sort == "name":
        keys = [(item["name"], uuid.UUID(item["id"])) for item in seen]
        assert keys == sorted(keys)
    else:
        keys = [(datetime.fromisoformat(item["updated_at"]), uuid.UUID(item["id"])) for item in seen]
        assert keys == sorted(keys, reverse=True)
    # rows inserted after the current position were picked up on later pages
    inserted = [item for item in seen if item["id"] not in originals]
    assert inserted, "no row inserted during the walk was seen"
