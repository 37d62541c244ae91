"""Turn models into the plain dicts the response schemas dump."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from webapp.models import Asset, AssetStatus
from webapp.services.assets import FIELDS, field_value

HIDDEN = {"connection_string"}
EXTRA = (
    "id", "first_seen_at", "last_seen_at", "last_import_id", "locked_fields", "version",
    "created_at", "created_by", "updated_at", "updated_by", "deleted_at", "deleted_by",
    "merged_into",
)


def asset(a: Asset, cutoff: datetime) -> dict[str, Any]:
    data: dict[str, Any] = {f: field_value(a, f) for f in FIELDS if f not in HIDDEN}
    for name in EXTRA:
        data[name] = getattr(a, name)
    for name, value in data.items():
        if hasattr(value, "value") and not isinstance(value, bool | int | float | str):
            data[name] = value.value
    data["has_connection_string"] = a.has_connection_string
    # SPEC §6, as asset_search.seen_condition: missed by covering scans since before `cutoff`
    data["stale"] = bool(
        a.status == AssetStatus.active and a.last_seen_at is not None
        and a.missed_since is not None and a.missed_since < cutoff
    )
    data["seen"] = ("unverified" if a.first_seen_at is None and a.last_seen_at is None
                    else "stale" if data["stale"] else "fresh")
    data["missed_since"] = a.missed_since
    return data
