"""Every list's one shape (SPEC §5 list pages, §7 list endpoints): query arguments → a typed
filter object → a keyset query → a page.

A list declares its filters as a dataclass whose fields say which argument they read and how:

    @dataclass
    class QueueFilter:
        kind: ConflictKind | None = listing.arg(listing.Choice(ConflictKind))
        min_confidence: float | None = listing.arg(listing.Percent())
        after: tuple[datetime, uuid.UUID] | None = listing.arg(listing.Position(MOMENT, ID))

    f = listing.parse(QueueFilter, request.args)   # ValidationFailed naming every bad value
    stmt = listing.keyset(select(Conflict).where(...), (Conflict.created_at, Conflict.id),
                          descending=True, limit=50, position=f.after)
    page = listing.page(list(session.scalars(stmt)), limit=50,
                        key=lambda c: (c.created_at, c.id))

NUL and invalid UTF-8 never reach a parser: the request refuses them first (`web/request.py`);
`parse` refuses them again for callers outside a request (the CLI, services called directly).

A page position travels in URLs as one cursor format, `encode_cursor(*values)`: a single
integer (an event id, a run number) as its digits, anything else as base64url JSON. A cursor
is read back against the types its list expects (`decode_cursor`), so a forged one is a 422
naming `cursor`, never a database error or a wrong page.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, tuple_

from webapp.services.errors import ValidationFailed
from webapp.services.text import UNSTORABLE, UNSTORABLE_MESSAGE

T = TypeVar("T")
S = TypeVar("S", bound=Select[Any])

CURSOR_MESSAGE = "This page link is not valid; start from the first page."
BIGINT_MAX = 2**63 - 1
TEXT_MAX = 200  # search text beyond this is cut, not refused (people paste long things)


# --- one cursor codec ---------------------------------------------------------------------------

class Part:
    """One value of a page position, as a cursor may carry it."""

    def read(self, value: Any) -> Any:  # pragma: no cover - every part overrides it
        raise NotImplementedError


class Text(Part):
    def read(self, value: Any) -> str:
        if not isinstance(value, str) or UNSTORABLE.search(value):  # NUL: PostgreSQL refuses it
            raise ValueError
        return value


class Integer(Part):
    """An integer within the column's range (a huge one overflows the driver)."""

    def __init__(self, minimum: int = 0, maximum: int = BIGINT_MAX) -> None:
        self.minimum, self.maximum = minimum, maximum

    def read(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError
        if not self.minimum <= value <= self.maximum:
            raise ValueError
        return value


class Moment(Part):
    """A timestamp with its time zone, as UTC."""

    def read(self, value: Any) -> datetime:
        if not isinstance(value, str):
            raise ValueError
        when = datetime.fromisoformat(value)
        if when.tzinfo is None:
            raise ValueError
        return when.astimezone(UTC)  # OverflowError near year 1 or 9999


class Id(Part):
    def read(self, value: Any) -> uuid.UUID:
        if not isinstance(value, str):
            raise ValueError
        return uuid.UUID(value)


class Exact(Part):
    """A fixed value, e.g. the sort a cursor was made for: a cursor of another sort is refused."""

    def __init__(self, value: str) -> None:
        self.value = value

    def read(self, value: Any) -> str:
        if value != self.value:
            raise ValueError
        return value


TEXT, MOMENT, ID = Text(), Moment(), Id()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def encode_cursor(*values: Any) -> str:
    """A page position as URL-safe text: one integer as its digits, else base64url JSON."""
    if len(values) == 1 and isinstance(values[0], int) and not isinstance(values[0], bool):
        return str(values[0])
    raw = json.dumps([_plain(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *parts: Part) -> tuple[Any, ...]:
    """The position `encode_cursor` wrote, each value checked against its `part`; 422 naming
    `cursor` when it is not one of ours."""
    try:
        if len(parts) == 1 and isinstance(parts[0], Integer):
            # ASCII digits only ("²".isdigit() is true, int("²") fails)
            if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 19:
                raise ValueError
            return (parts[0].read(int(cursor)),)
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != len(parts):
            raise ValueError
        return tuple(part.read(value) for part, value in zip(parts, values, strict=True))
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error,
            UnicodeDecodeError):
        raise ValidationFailed({"cursor": CURSOR_MESSAGE}) from None


# --- query arguments → a typed filter -----------------------------------------------------------

class Param:
    """How one query argument becomes one filter value. `convert` gets the argument's text
    (or every value given, for `many`) and returns the value or raises ValueError, whose
    message (or the param's own) is shown beside the field."""

    many = False
    message = "This value is not valid."

    def convert(self, raw: Any) -> Any:  # pragma: no cover - every param overrides it
        raise NotImplementedError


class Search(Param):
    """Free text, trimmed and cut to `max_length`; optionally lower-cased."""

    def __init__(self, max_length: int = TEXT_MAX, *, lower: bool = False) -> None:
        self.max_length, self.lower = max_length, lower

    def convert(self, raw: str) -> str | None:
        text = raw.strip()[: self.max_length].strip()
        return (text.lower() if self.lower else text) or None


class Raw(Param):
    """Text as given, trimmed (an opaque value another step checks, e.g. a cursor whose parts
    depend on the sort)."""

    def convert(self, raw: str) -> str | None:
        return raw.strip() or None


class Choice(Param):
    """One of an enum's values (the member is returned) or of a list of strings. With
    `many=True` the argument may repeat (`engine=postgresql&engine=mysql`): a list."""

    def __init__(self, choices: type[enum.Enum] | Iterable[str], *, many: bool = False,
                 message: str | None = None) -> None:
        self.enum = choices if isinstance(choices, type) and issubclass(choices, enum.Enum) else None
        self.values = [m.value for m in self.enum] if self.enum else list(choices)  # type: ignore[union-attr]
        self.many = many
        self.message = message or f"Choose one of: {', '.join(self.values)}."

    def _one(self, value: str) -> Any:
        if value not in self.values:
            raise ValueError(self.message)
        return self.enum(value) if self.enum else value

    def convert(self, raw: Any) -> Any:
        if self.many:
            chosen = [self._one(v) for v in dict.fromkeys(raw) if v]
            return chosen or None
        return self._one(raw)


class Flag(Param):
    message = "Use true or false."

    def convert(self, raw: str) -> bool:
        if raw in ("true", "1", "yes", "on"):
            return True
        if raw in ("false", "0", "no", "off"):
            return False
        raise ValueError(self.message)


class Whole(Param):
    """A whole number in [minimum, maximum], written with ASCII digits (an optional `prefix`,
    such as the `#` of `#12`, is allowed)."""

    def __init__(self, minimum: int = 0, maximum: int = BIGINT_MAX, *, prefix: str = "",
                 message: str | None = None) -> None:
        self.minimum, self.maximum, self.prefix = minimum, maximum, prefix
        self.message = message or f"Enter a number from {minimum} to {maximum}."

    def convert(self, raw: str) -> int:
        text = raw.strip().removeprefix(self.prefix).strip() if self.prefix else raw.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 19:
            raise ValueError(self.message)
        number = int(text)
        if not self.minimum <= number <= self.maximum:
            raise ValueError(self.message)
        return number


class Percent(Param):
    """A percentage from 0 to 100 (`90` or `90%`), as a fraction."""

    message = "Enter a percentage from 0 to 100."

    def convert(self, raw: str) -> float:
        text = raw.strip().rstrip("%").strip()
        try:
            percent = float(text)
        except ValueError:
            raise ValueError(self.message) from None
        if not math.isfinite(percent) or not 0 <= percent <= 100:
            raise ValueError(self.message)
        return percent / 100


class Day(Param):
    """A date (YYYY-MM-DD) as the start of that day in UTC, or its end with `end=True`; a full
    timestamp with a zone is taken as it is."""

    message = "Enter a date as YYYY-MM-DD."

    def __init__(self, *, end: bool = False) -> None:
        self.end = end

    def convert(self, raw: str) -> datetime:
        try:
            when = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise ValueError(self.message) from None
        if when.tzinfo is None:
            when = datetime.combine(when.date(), time.max if self.end else time.min, tzinfo=UTC)
        return when


class Position(Param):
    """A page position: a cursor of `parts` (see `decode_cursor`)."""

    message = CURSOR_MESSAGE

    def __init__(self, *parts: Part) -> None:
        self.parts = parts

    def convert(self, raw: str) -> tuple[Any, ...] | int:
        try:
            values = decode_cursor(raw.strip(), *self.parts)
        except ValidationFailed:
            raise ValueError(self.message) from None
        return values[0] if len(values) == 1 else values


def arg(param: Param, *, name: str | None = None, default: Any = None) -> Any:
    """A filter dataclass field read from query argument `name` (default: the field's name)."""
    return dataclasses.field(default=default, metadata={"param": param, "arg": name})


def parse(cls: type[T], args: Mapping[str, Any], *, params: Mapping[str, Param] | None = None,
          **values: Any) -> T:
    """Build the filter dataclass `cls` from query arguments; ValidationFailed naming every bad
    one at once. `params` replace fields' own (e.g. a page size whose bound the caller knows);
    `values` are set as given."""
    errors: dict[str, str] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        param: Param | None = (params or {}).get(f.name) or f.metadata.get("param")
        if param is None or f.name in values:
            continue
        name = f.metadata.get("arg") or f.name
        raw = _raw(args, name, param.many)
        if raw in (None, "", []):
            continue
        if any(not isinstance(v, str) or UNSTORABLE.search(v) for v in (raw if param.many else [raw])):
            errors[name] = UNSTORABLE_MESSAGE
            continue
        try:
            converted = param.convert(raw)
        except (ValueError, OverflowError) as exc:
            errors[name] = str(exc) or param.message
            continue
        if converted is not None:
            values[f.name] = converted
    if errors:
        raise ValidationFailed(errors, "Some filters are not valid.")
    return cls(**values)


def _raw(args: Mapping[str, Any], name: str, many: bool) -> Any:
    if many:
        getlist = getattr(args, "getlist", None)
        if getlist is not None:
            return [v for v in getlist(name) if v]
        value = args.get(name)
        if isinstance(value, list | tuple):
            return [v for v in value if v]
        return [value] if value else []
    value = args.get(name)
    if isinstance(value, bool | int):  # a caller in Python (the API's parsed arguments)
        value = str(value).lower()
    return value


def query_args(obj: Any) -> dict[str, Any]:
    """The query arguments that give back filter `obj` (for links that keep the filters):
    positions (cursors) left out."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        param = f.metadata.get("param")
        value = getattr(obj, f.name)
        if param is None or isinstance(param, Position) or value in (None, "", [], f.default):
            continue
        name = f.metadata.get("arg") or f.name
        if isinstance(value, list):
            out[name] = [_plain(v) for v in value]
        elif isinstance(param, Percent):
            out[name] = f"{value * 100:g}"
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = _plain(value)
    return out


# --- a keyset query and its page ----------------------------------------------------------------

def keyset(stmt: S, keys: Sequence[ColumnElement[Any]], *, descending: bool, limit: int,
           position: Sequence[Any] | None = None) -> S:
    """`stmt` ordered by `keys` (the last one unique, e.g. the id), past `position` in that
    order, reading one row more than `limit` (so `page` knows whether another page follows)."""
    if position is not None:
        row, at = (tuple_(*keys), tuple(position)) if len(keys) > 1 else (keys[0], position[0])
        stmt = stmt.where(row < at if descending else row > at)
    order = [k.desc() if descending else k.asc() for k in keys]
    return stmt.order_by(*order).limit(limit + 1)


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
    prev_cursor: str | None = None


def page(rows: list[T], *, limit: int, key: Callable[[T], tuple[Any, ...]],
         backwards: bool = False, from_cursor: bool = False) -> Page[T]:
    """The page `keyset` read (`limit + 1` rows): the extra row only says that more follow.
    `backwards`: the rows were read in reverse to go to the previous page (they are put back in
    order); `from_cursor`: this page is not the first, so there is a previous one."""
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    has_next = more if not backwards else True
    has_prev = more if backwards else from_cursor
    last = key(rows[-1]) if rows and has_next else None
    first = key(rows[0]) if rows and has_prev else None
    return Page(rows, encode_cursor(*last) if last else None,
                encode_cursor(*first) if first else None)
