"""The strong identifiers an asset is found by during discovery (SPEC §6).

Each asset has a row in `asset_identifiers` per key:

* `cloud:<cloud_resource_id>`: an ARN, a self-link or an Azure id (Azure ids lower-cased);
* `ep:<host>:<port>` for its host and every alias, host names in canonical form
  (`DB1.Example.COM.` → `db1.example.com`), or `ep:<host>:` when the port is unknown.

A host alone is never a key: two databases on one server differ by port (SPEC §6). The keys are
written by the service layer whenever host, port, aliases or the cloud id change, so the import
job finds candidates with one indexed lookup per batch instead of comparing records to assets.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from webapp.discovery import normalise
from webapp.models import AssetIdentifier
from webapp.services import bulk

# fields whose change means the asset's identifiers must be rewritten
KEY_FIELDS = frozenset({"host", "port", "aliases", "cloud_resource_id"})


@lru_cache(maxsize=262_144)  # an import asks for the same names many times
def host_form(value: str) -> str:
    """The canonical spelling of a host name or address (lower-cased text if neither)."""
    return normalise.host(value) or value.strip().lower().rstrip(".")


def cloud_form(value: str) -> str:
    value = value.strip()
    return value.lower() if value.lower().startswith("/subscriptions/") else value


def cloud_key(value: str) -> str:
    return f"cloud:{cloud_form(value)}"


def endpoint_key(host: str, port: int | None) -> str:
    return f"ep:{host_form(host)}:{port if port is not None else ''}"


def names(fields: Mapping[str, Any]) -> list[str]:
    """Host and aliases in canonical form, host first, without repeats."""
    found: list[str] = []
    for value in [fields.get("host"), *(fields.get("aliases") or [])]:
        if isinstance(value, str) and value.strip():
            name = host_form(value)
            if name and name not in found:
                found.append(name)
    return found


def keys_for(fields: Mapping[str, Any]) -> list[str]:
    """Every identifier key of an asset (or a discovered record) with these field values."""
    keys: list[str] = []
    cloud = fields.get("cloud_resource_id")
    if isinstance(cloud, str) and cloud.strip():
        keys.append(cloud_key(cloud))
    port = fields.get("port")
    keys += [endpoint_key(name, port) for name in names(fields)]
    return keys


def rows(asset_id: uuid.UUID, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "asset_id": asset_id} for k in dict.fromkeys(keys_for(fields))]


def replace(session: Session, assets: Iterable[tuple[uuid.UUID, Mapping[str, Any]]]) -> None:
    """Rewrite the identifiers of these assets (id, current field values), in the caller's
    transaction."""
    ids: list[uuid.UUID] = []
    new: list[dict[str, Any]] = []
    for asset_id, fields in assets:
        ids.append(asset_id)
        new += rows(asset_id, fields)
    if not ids:
        return
    for start in range(0, len(ids), 5000):
        session.execute(
            delete(AssetIdentifier).where(bulk.among(session, AssetIdentifier.asset_id, ids[start : start + 5000]))
        )
    bulk.insert_rows(session, AssetIdentifier.__table__, new)


def forget(session: Session, asset_id: uuid.UUID) -> None:
    session.execute(delete(AssetIdentifier).where(AssetIdentifier.asset_id == asset_id))
