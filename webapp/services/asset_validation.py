"""Asset field validation: the check of every field of the catalogue
(`webapp/models/asset_fields.py`), and `validate`, which the asset changes run before writing.

    cleaned = validate({"name": "orders", "engine": "postgresql"}, partial=False)

`FIELDS` holds one check per field: it raises ValueError with a message, or returns the clean
value; `validate` collects the messages into one ValidationFailed.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from webapp.models import asset_fields
from webapp.services.errors import ValidationFailed
from webapp.services.text import storable

METADATA_MAX_DEPTH = 20


def _text(max_len: int, required: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None:
            if required:
                raise ValueError("This field is required.")
            return None
        if not isinstance(value, str):
            raise ValueError("Enter text.")
        value = value.strip()
        if not value:
            if required:
                raise ValueError("This field is required.")
            return None
        if len(value) > max_len:
            raise ValueError(f"Enter at most {max_len} characters (got {len(value)}).")
        return storable(value)

    return check


def _choice(enum_cls: type[enum.Enum], required: bool = False) -> Callable[[Any], Any]:
    allowed = [m.value for m in enum_cls]

    def check(value: Any) -> Any:
        if value is None or value == "":
            if required:
                raise ValueError("This field is required.")
            return None
        try:
            return enum_cls(value)
        except ValueError:
            raise ValueError(f"Choose one of: {', '.join(allowed)}.") from None

    return check


def _integer(low: int, high: int) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("Enter a whole number.")
        if not low <= value <= high:
            raise ValueError(f"Enter a number from {low} to {high}.")
        return value

    return check


def _boolean(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    raise ValueError("Enter true, false or leave empty.")


def _timestamp(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("Enter a date and time in ISO 8601 form.") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError("Enter a date and time with a time zone.")
    try:
        value.astimezone(UTC)  # stored in UTC: 0001-01-01T00:00+01:00 has no UTC equivalent
    except OverflowError:
        raise ValueError("Enter a date and time between the years 1 and 9999 in UTC.") from None
    return value


def _string_list(max_items: int, max_len: int) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError("Enter a list of text values.")
        cleaned: list[str] = []
        for item in value:
            item = item.strip()
            if not item:
                continue
            if len(item) > max_len:
                raise ValueError(f"Each value may have at most {max_len} characters.")
            storable(item)
            if item not in cleaned:
                cleaned.append(item)
        if len(cleaned) > max_items:
            raise ValueError(f"Enter at most {max_items} values.")
        return cleaned

    return check


def _tags(value: Any) -> Any:
    tags = asset_fields.spec("tags")
    names = _string_list(tags.max_items or 0, tags.max_length or 0)(value)
    return sorted({n.lower() for n in names})


def _mapping(value: Any) -> Any:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("Enter a JSON object.")
    _check_json(value, 1)
    return value


def _check_json(value: Any, depth: int) -> None:
    """Nested metadata must be storable: finite numbers, clean text, bounded depth."""
    if isinstance(value, str):
        storable(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("Numbers must be finite (no NaN or Infinity).")
    elif isinstance(value, dict | list):
        if depth > METADATA_MAX_DEPTH:
            raise ValueError(f"Nest at most {METADATA_MAX_DEPTH} levels deep.")
        if isinstance(value, dict):
            for key in value:
                if isinstance(key, str):
                    storable(key)
        for item in value.values() if isinstance(value, dict) else value:
            _check_json(item, depth + 1)


def _number(low: float, high: float) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise ValueError(f"Enter a number between {low:g} and {high:g}.")
        return float(value)

    return check


def _validator(spec: asset_fields.FieldSpec) -> Callable[[Any], Any]:
    """The check of one catalogue field: it raises ValueError with a message, or returns the
    clean value."""
    if spec.kind == "text":
        return _text(spec.max_length or 0, required=spec.required)
    if spec.kind == "choice":
        assert spec.enum is not None
        return _choice(spec.enum, required=spec.required)
    if spec.kind == "integer":
        return _integer(int(spec.minimum or 0), int(spec.maximum or 0))
    if spec.kind == "number":
        return _number(spec.minimum or 0, spec.maximum or 0)
    if spec.kind == "list":
        return _string_list(spec.max_items or 0, spec.max_length or 0)
    return {"boolean": _boolean, "timestamp": _timestamp, "mapping": _mapping, "tags": _tags}[spec.kind]


FIELDS: dict[str, Callable[[Any], Any]] = {f.name: _validator(f) for f in asset_fields.CATALOGUE}
# fields whose value lives under another attribute name on the model
ATTRIBUTE = {f.name: f.attribute for f in asset_fields.CATALOGUE if f.attribute}
NOT_NULL_DEFAULTS = {
    f.name: f.enum(f.default) if f.enum else f.default
    for f in asset_fields.CATALOGUE if f.default is not None
}
# what an unset field looks like in a version rebuilt from the audit log
EMPTY: dict[str, Any] = {"aliases": [], "tags": [], "metadata": {},
                         **{f.name: f.default for f in asset_fields.CATALOGUE if f.default is not None}}


def validate(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """Check and normalise asset fields; raise ValidationFailed with a message per field."""
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for field in data:
        if field not in FIELDS:
            errors[field] = "Unknown field."
    for field, check in FIELDS.items():
        if field not in data:
            if not partial and field in ("name", "engine"):
                errors[field] = "This field is required."
            continue
        try:
            cleaned[field] = check(data[field])
        except ValueError as exc:
            errors[field] = str(exc)
    for field, default in NOT_NULL_DEFAULTS.items():
        if field in cleaned and cleaned[field] is None:
            cleaned[field] = default
    if errors:
        raise ValidationFailed(errors)
    return cleaned
