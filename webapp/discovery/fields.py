"""Turning raw values into asset fields, shared by the record-shaped formats.

`inventory-json` and `csv` both deliver "a field name and a value"; cloud tags/labels deliver a
few more (an `Environment=prod` tag). They go through one `RecordBuilder`, so a value means the
same whatever file it came in, and every field ends up in the form the service validators
(`webapp.services.assets.FIELDS`) accept: enum values as their string value, integers, booleans,
UTC datetimes, lower-cased unique tag lists.

Three outcomes per value:
* accepted: the field is set;
* cannot be mapped (unknown engine spelling, `maybe` as a boolean, a 70-character tag): a
  warning on the record and the field left out, never a guess;
* makes the record unusable (port not in 1..65535, a name over 200 characters): RecordError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from webapp.discovery import normalise
from webapp.discovery.base import RecordError

# The field catalogue's limits (webapp/models/asset_fields.py), so a parsed record never fails
# validation later. Written out, since discovery imports nothing of the database layer;
# tests/services/test_asset_fields.py fails if they drift apart.
TEXT_LIMITS = {
    "name": 200,
    "engine_version": 100,
    "host": 255,
    "database_name": 200,
    "region": 100,
    "cloud_resource_id": 500,
    "owner": 200,
    "connection_string": 4000,
    "notes": 20000,
    "source": 100,
}
MAX_ALIASES = 50
MAX_ALIAS_LEN = 255
MAX_TAGS = 50
MAX_TAG_LEN = 64
SECRET_FIELDS = frozenset({"connection_string"})

_LIST_SPLIT = re.compile(r"[;,]")

# Keys a file may carry that are the app's own bookkeeping (an export of /api/v1/assets), not
# discovered facts: ignored without a warning.
BOOKKEEPING = frozenset(
    {
        "id",
        "first_seen_at",
        "last_seen_at",
        "last_import_id",
        "locked_fields",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
        "deleted_at",
        "deleted_by",
        "merged_into",
        "has_connection_string",
        "stale",
        "seen",
        "missed_since",
    }
)


class Unmapped(Exception):
    """A value that cannot be mapped: becomes a record warning, the field is left out."""


def _show(value: Any) -> str:
    """A value for a message: text in quotes, anything else as JSON, cut at 60 characters."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > 60:
        text = text[:57] + "…"
    return repr(text) if isinstance(value, str) else text


# --- one function per field: raw value -> field value ---------------------------------------


def _text(field: str) -> Callable[[Any], Any]:
    limit = TEXT_LIMITS[field]

    def clean(value: Any) -> Any:
        if type(value) is not str and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise Unmapped(f"{field}: expected text, got {_show(value)}")
        text = str(value).strip()
        if not text:
            return None
        if "\x00" in text:  # PostgreSQL text cannot hold NUL
            if field == "name":
                raise RecordError("name contains a NUL character.")
            raise Unmapped(f"{field} contains a NUL character")
        if len(text) > limit:
            message = f"{field} is longer than {limit} characters ({len(text)})"
            if field == "name":
                raise RecordError(message + ".")
            raise Unmapped(message)
        return text

    return clean


def _choice(field: str, lookup: Callable[[str], str | None]) -> Callable[[Any], Any]:
    def clean(value: Any) -> Any:
        if not isinstance(value, str):
            raise Unmapped(f"{field} {_show(value)} not recognised")
        if not value.strip():
            return None
        found = lookup(value)
        if found is None:
            raise Unmapped(f"{field} {_show(value.strip())} not recognised")
        return found

    return clean


def _port(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        number = int(text) if text.isascii() and text.isdigit() else None
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        number = None
    if number is None or not 1 <= number <= 65535:
        raise RecordError(f"port {_show(value)} is not a whole number from 1 to 65535.")
    return number


def _boolean(field: str) -> Callable[[Any], Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        found = normalise.boolean(value)
        if found is None:
            raise Unmapped(f"{field} {_show(value)} is not yes/no/true/false")
        return found

    return clean


def _whole_number(field: str, low: int, high: int) -> Callable[[Any], Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            number = int(text) if text.isascii() and text.isdigit() else None
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        else:
            number = None
        if number is None or not low <= number <= high:
            raise Unmapped(f"{field} {_show(value)} is not a whole number from {low} to {high}")
        return number

    return clean


def _confidence(value: Any) -> Any:
    number: float | None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            number = float(value)
        except ValueError:
            number = None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        number = None
    if number is None or not 0 <= number <= 1:
        raise Unmapped(f"confidence {_show(value)} is not a number between 0 and 1")
    return number


def _timestamp(field: str) -> Callable[[Any], Any]:
    def clean(value: Any) -> Any:
        if not isinstance(value, str):
            raise Unmapped(f"{field} {_show(value)} is not an ISO 8601 date and time")
        if not value.strip():
            return None
        parsed = normalise.timestamp(value)
        if parsed is None:
            raise Unmapped(f"{field} {_show(value)} is not an ISO 8601 date and time")
        return parsed  # (datetime, had_timezone): the builder warns when it assumed UTC

    return clean


def _metadata(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except ValueError:
            raise Unmapped("metadata is not a JSON object") from None
    if not isinstance(value, dict):
        raise Unmapped("metadata is not a JSON object")
    if _has_nul(value):
        raise Unmapped("metadata contains a NUL character")  # PostgreSQL jsonb refuses \u0000
    return value or None  # {} says nothing, like an empty tag list


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _split(value: Any, separators: re.Pattern[str]) -> list[str]:
    if isinstance(value, str):
        return [p.strip() for p in separators.split(value) if p.strip()]
    if isinstance(value, list | tuple):
        items: list[str] = []
        for item in value:
            if isinstance(item, str | int | float) and not isinstance(item, bool):
                items.append(str(item))
            else:
                raise Unmapped(f"list item {_show(item)} is not text")
        return items
    raise Unmapped(f"{_show(value)} is not a list")


def tag_list(value: Any, warnings: list[str]) -> list[str]:
    """Tags from `a; b; k=v` text, a list, or a {key: value} object; lower-cased (as the tag
    table stores them), unique, sorted; an over-long tag is dropped with a warning."""
    if isinstance(value, dict):
        items = [f"{k}={v}" if v not in (None, "") else str(k) for k, v in value.items()]
    elif isinstance(value, str):
        items = value.split(";")
    else:
        items = _split(value, _LIST_SPLIT)
    tags: set[str] = set()
    for item in items:
        tag = item.strip().lower()
        if not tag:
            continue
        if "\x00" in tag:
            warnings.append("a tag contains a NUL character; left out")
            continue
        if len(tag) > MAX_TAG_LEN:
            warnings.append(f"tag {_show(tag)} is longer than {MAX_TAG_LEN} characters; left out")
            continue
        tags.add(tag)
    out = sorted(tags)
    if len(out) > MAX_TAGS:
        warnings.append(f"{len(out)} tags; only the first {MAX_TAGS} (alphabetically) are kept")
        out = out[:MAX_TAGS]
    return out


RULES: dict[str, Callable[[Any], Any]] = {
    "name": _text("name"),
    "engine_version": _text("engine_version"),
    "port": _port,
    "database_name": _text("database_name"),
    "cloud_provider": _choice("cloud_provider", normalise.cloud_provider),
    "region": _text("region"),
    "cloud_resource_id": _text("cloud_resource_id"),
    "environment": _choice("environment", normalise.environment),
    "status": _choice("status", normalise.status),
    "owner": _text("owner"),
    "criticality": _choice("criticality", normalise.criticality),
    "data_classification": _choice("data_classification", normalise.data_classification),
    "encrypted_at_rest": _boolean("encrypted_at_rest"),
    "tls_required": _boolean("tls_required"),
    "publicly_accessible": _boolean("publicly_accessible"),
    "backup_retention_days": _whole_number("backup_retention_days", 0, 3650),
    "last_backup_at": _timestamp("last_backup_at"),
    "deletion_protection": _boolean("deletion_protection"),
    "connection_string": _text("connection_string"),
    "metadata": _metadata,
    "notes": _text("notes"),
    "confidence": _confidence,
}


class RecordBuilder:
    """Collects raw values for one record and produces its fields, warnings and IPs."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.ip_addresses: list[str] = []
        self._version_hint: str | None = None
        self._extra_hosts: list[str] = []

    def set(self, field: str, value: Any) -> None:
        """Set one field from a raw value (None or blank text = unknown: nothing is set)."""
        if value is None or field in self.fields:
            return
        special = _SPECIAL_SETTERS.get(field)
        if special is not None:
            special(self, value)
            return
        try:
            cleaned = RULES[field](value)
        except Unmapped as exc:
            message = str(exc)
            if field in SECRET_FIELDS:  # never echo a secret into a message
                message = f"{field} is not valid text"
            self.warnings.append(f"{message}; left out")
            return
        if cleaned is None:
            return
        if field == "last_backup_at":
            cleaned, had_zone = cleaned
            if not had_zone:
                self.warnings.append("last_backup_at has no time zone; read as UTC")
        self.fields[field] = cleaned

    def _tags(self, value: Any) -> None:
        try:
            tags = tag_list(value, self.warnings)
        except Unmapped as exc:
            self.warnings.append(f"tags: {exc}; left out")
            return
        if tags:
            self.fields["tags"] = tags

    def _engine(self, value: Any) -> None:
        if not isinstance(value, str):
            self.warnings.append(f"engine {_show(value)} not recognised; left out")
            return
        if not value.strip():
            return
        engine, version = normalise.engine(value)
        if engine is None:
            self.warnings.append(f"engine {_show(value.strip())} not recognised; left out")
            return
        self.fields["engine"] = engine
        self._version_hint = version

    def _host(self, value: Any) -> None:
        if not isinstance(value, str) or not value.strip():
            if not isinstance(value, str):
                self.warnings.append(f"host {_show(value)} is not text; left out")
            return
        found = normalise.host(value)
        if found is None:
            self.warnings.append(
                f"host {_show(value.strip())} is not a DNS name or IP address; left out"
            )
            return
        self.fields["host"] = found

    def add_host_candidate(self, value: str) -> None:
        """A second column naming the server (e.g. both `hostname` and `ip_address`): it
        becomes the host if there is none, else an alias."""
        if "host" not in self.fields:
            self._host(value)
        elif value.strip():
            self._extra_hosts.append(value)

    def _aliases(self, value: Any) -> None:
        try:
            items = _split(value, _LIST_SPLIT)
        except Unmapped as exc:
            self.warnings.append(f"aliases: {exc}; left out")
            return
        self._extra_hosts.extend(items)

    def finish(self) -> tuple[dict[str, Any], list[str], list[str]]:
        """Resolve cross-field rules; (fields, warnings, ip_addresses). RecordError if nothing
        identifies the record."""
        fields = self.fields
        if self._version_hint and "engine_version" not in fields:
            fields["engine_version"] = self._version_hint
        host = fields.get("host")
        aliases: list[str] = []
        for item in self._extra_hosts:
            found = normalise.host(item)
            if found is None:
                self.warnings.append(
                    f"alias {_show(item)} is not a DNS name or IP address; left out"
                )
            elif found != host and found not in aliases and len(found) <= MAX_ALIAS_LEN:
                aliases.append(found)
        if len(aliases) > MAX_ALIASES:
            self.warnings.append(f"{len(aliases)} aliases; only the first {MAX_ALIASES} are kept")
            aliases = aliases[:MAX_ALIASES]
        if aliases:
            fields["aliases"] = aliases
        for name in ([host] if host else []) + aliases:
            if normalise.is_ip(name) and name not in self.ip_addresses:
                self.ip_addresses.append(name)
        if "name" not in fields:
            fields["name"] = derived_name(fields)
        return fields, self.warnings, self.ip_addresses


# handled by RecordBuilder itself: engine (may carry a version), host/aliases (IPs), tags
_SPECIAL_SETTERS: dict[str, Callable[[RecordBuilder, Any], None]] = {
    "engine": RecordBuilder._engine,
    "host": RecordBuilder._host,
    "aliases": RecordBuilder._aliases,
    "tags": RecordBuilder._tags,
}
FIELD_NAMES = frozenset(RULES) | frozenset(_SPECIAL_SETTERS)


def derived_name(fields: Mapping[str, Any]) -> str:
    """A name for a record that has none: `host:port/database`, or whichever parts exist;
    RecordError when nothing identifies the record."""
    host, port, database = fields.get("host"), fields.get("port"), fields.get("database_name")
    if host:
        name = host if ":" not in host else f"[{host}]"
        if port:
            name += f":{port}"
        if database:
            name += f"/{database}"
    elif database:
        name = database
    elif fields.get("cloud_resource_id"):
        name = fields["cloud_resource_id"]
    else:
        raise RecordError(
            "No name, and no host, database name or cloud resource id to derive one from."
        )
    return name[: TEXT_LIMITS["name"]]


# --- tags and labels that carry asset fields -------------------------------------------------

TAG_FIELDS = {
    normalise.key(k): field
    for field, keys in {
        "environment": ("environment", "env", "stage"),
        "owner": ("owner", "owner_email", "team", "contact"),
        "criticality": ("criticality", "business_criticality"),
        "data_classification": (
            "data_classification",
            "classification",
            "data_class",
            "sensitivity",
        ),
    }.items()
    for k in keys
}


def fields_from_tags(tags: Iterable[tuple[str, Any]], builder: RecordBuilder) -> None:
    """Conventional cloud tags (`Environment=prod`, `owner=team-db`) fill the matching asset
    fields, with the same spellings as a CSV column; the first tag for a field wins."""
    for tag_key, value in tags:
        field = TAG_FIELDS.get(normalise.key(str(tag_key)))
        if field and isinstance(value, str) and value.strip():
            builder.set(field, value)
