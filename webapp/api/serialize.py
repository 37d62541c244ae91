"""Turn models into the plain dicts the response schemas dump."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from webapp.models import Asset, AssetStatus
from webapp.services.assets import ATTRIBUTE, FIELDS

HIDDEN = {"connection_string"}
EXTRA = (
    "id", "first_seen_at", "last_seen_at", "last_import_id", "locked_fields", "version",
    "created_at", "created_by", "updated_at", "updated_by", "deleted_at", "deleted_by",
    "merged_into",
)

# the asset columns `asset` reads: what a list page loads (as plain rows, `fields` of
# `asset_search.list_assets`) instead of whole ORM objects (no identity map, and no parse of
# the JSON columns the answer does not show)
LISTED_FIELDS = frozenset(
    {ATTRIBUTE.get(f, f) for f in FIELDS if f not in HIDDEN and f != "tags"} | set(EXTRA)
    | {"status", "missed_since", "first_seen_at", "last_seen_at", "connection_string_encrypted"}
)

# each shown field and the attribute holding it (as `field_value` reads them; None: the tags'
# names), in FIELDS' order
_READ = tuple((f, None if f == "tags" else ATTRIBUTE.get(f, f)) for f in FIELDS if f not in HIDDEN)


def asset(a: Asset, cutoff: datetime) -> dict[str, Any]:
    data: dict[str, Any] = {field: getattr(a, attribute) if attribute else [t.name for t in a.tags]
                            for field, attribute in _READ}
    for name in EXTRA:
        data[name] = getattr(a, name)
    for name, value in data.items():
        if isinstance(value, enum.Enum):
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
