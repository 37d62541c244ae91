"""What a batch carries between its steps: the records being processed (`Item`), what became
of each (`Result`), what identification concluded (`Decision`), the assets the batch touches
(`Work`), and the constants and small helpers the steps share."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from webapp.discovery import DiscoveredRecord, normalise
from webapp.discovery.base import RecordError
from webapp.discovery.fields import derived_name
from webapp.models import Asset, RecordOutcome
from webapp.services import audit, identifiers, matching
from webapp.services.errors import ValidationFailed

IMPORT_LOCK = 0x494D5054  # arbitrary constant naming the import batches' advisory lock
IN_CHUNK = 5000  # values per IN (...) list
ROW_ERRORS_MAX = 1000  # kept on the run; every failed record is also in its records
SEEN_REFRESH = timedelta(hours=1)  # last_seen_at is refreshed at most this often
BRIDGES_PER_RECORD = 20
BLOCK_MAX = 10  # a blocking key shared by more assets than this tells nothing: it is ignored
ASSETS = Asset.__table__
# what scoring a candidate reads (`Lookup.load_light`)
LIGHT_COLUMNS = ("id", "deleted_at", "name", "engine", "engine_version", "host", "port", "aliases",
                 "database_name", "cloud_resource_id", "environment", "cloud_provider", "region")
# an asset's `_locked` when no field is locked (most assets): one object for them all
NO_LOCKS: frozenset[str] = frozenset()
# field name -> column name, where they differ (tags live in their own table)
COLUMN = {"metadata": "metadata", "connection_string": "connection_string_encrypted"}


class Retry(Exception):
    """The batch met a concurrent change (an edited asset, a clashing insert): redo it."""


def fingerprint(value: Any) -> str:
    """SHA-256 of a value's canonical JSON (a record's fields, or what a review item asks)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Item:
    seq: int
    record: DiscoveredRecord
    fields: dict[str, Any] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    cloud_key: str | None = None
    endpoint_keys: list[str] = field(default_factory=list)
    all_names: list[str] = field(default_factory=list)  # host names and addresses, bridged ones too
    block_keys: list[str] = field(default_factory=list)
    fingerprint: str | None = None
    name_derived: bool = False


@dataclass
class Result:
    seq: int
    row: int | None
    key: str
    outcome: RecordOutcome
    asset_id: uuid.UUID | None = None
    message: str | None = None
    changes: dict[str, Any] | None = None
    fingerprint: str | None = None
    asset_version: int | None = None
    conflict: dict[str, Any] | None = None  # the review item this record asks for
    conflict_id: uuid.UUID | None = None
    # existing assets this record shows to be one database (possible duplicates of each other)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    # what the parser left out of the record ("criticality 'bogus' not recognised; left out")
    warnings: list[str] = field(default_factory=list)

    @property
    def full_message(self) -> str | None:
        """The outcome's message with the record's warnings after it."""
        parts = [self.message] if self.message else []
        if self.warnings:
            parts.append("Warnings: " + "; ".join(self.warnings) + ".")
        return " ".join(parts) or None


@dataclass
class Decision:
    """What identification concluded for one record."""

    asset_id: uuid.UUID | None = None
    how: str | None = None  # cloud, endpoint, medium or fingerprint
    skip: str | None = None  # why the record is left alone
    flag: tuple[uuid.UUID, matching.Score] | None = None  # a possible duplicate of this asset
    # other existing assets the record's evidence ties to the matched one
    duplicates: list[tuple[uuid.UUID, matching.Score]] = field(default_factory=list)
    # other existing assets the record's strong evidence shows to be the matched one's database:
    # they merge into it
    absorb: list[uuid.UUID] = field(default_factory=list)
    # weak evidence only: the record is created, and a reviewer asked about this candidate
    link: tuple[uuid.UUID, matching.Score] | None = None


@dataclass
class Work:
    """An asset touched by this batch: its state as the batch leaves it."""

    state: dict[str, Any]
    is_new: bool
    read_version: int
    events: list[audit.Entry] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)


def prepare(seq: int, record: DiscoveredRecord) -> Item:
    it = Item(seq=seq, record=record)
    if record.error is not None:
        return it
    fields = dict(record.fields)
    it.fields = fields
    it.names = identifiers.names(fields)
    it.ips = [a for a in dict.fromkeys([*record.ip_addresses, *it.names]) if normalise.ip(a)]
    cloud = fields.get("cloud_resource_id")
    if isinstance(cloud, str) and cloud.strip():
        it.cloud_key = identifiers.cloud_key(cloud)
    it.name_derived = is_derived_name(fields, it.names)
    it.fingerprint = fingerprint(fields)
    return it


def is_derived_name(fields: dict[str, Any], names: list[str]) -> bool:
    """Whether the record's name is only its endpoint (`host:port/db`, nmap's
    `hostname:port`): such a name is made up by the parser and never renames an asset."""
    name = fields.get("name")
    try:
        if name == derived_name(fields):
            return True
    except RecordError:
        pass
    port = fields.get("port")
    return port is not None and any(name == f"{n}:{port}" or name == f"[{n}]:{port}" for n in names)


def is_strong(key: str) -> bool:
    return key.startswith(("cloud:", "ep:"))


def incoming(fields: dict[str, Any]) -> dict[str, Any]:
    """A record's fields as a review item keeps them (JSON values; never a secret)."""
    return {k: audit.jsonable(v) for k, v in fields.items() if k not in ("connection_string", "source")}


def digest(*parts: Any) -> str:
    return fingerprint(list(parts))


def messages(exc: ValidationFailed) -> str:
    return "; ".join(f"{f}: {m}" for f, m in exc.errors.items())
