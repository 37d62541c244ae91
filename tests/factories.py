"""Test data made through the same services as production data."""

from __future__ import annotations

import itertools
from typing import Any

from webapp.services import assets
from webapp.services.actor import Actor

_seq = itertools.count(1)
ACTOR = Actor.system("test")


def asset_data(**overrides: Any) -> dict[str, Any]:
    n = next(_seq)
    data: dict[str, Any] = {
        "name": f"db-{n:04d}",
        "engine": "postgresql",
        "host": f"db{n}.example.com",
        "port": 5432,
        "environment": "production",
        "owner": "team-a@example.com",
    }
    data.update(overrides)
    return data


def make_asset(session, actor: Actor = ACTOR, **overrides: Any):  # type: ignore[no-untyped-def]
    return assets.create(session, actor, asset_data(**overrides))
