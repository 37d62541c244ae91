"""How a column's values are written in a dump, and read back (`dump`, `load`).

One codec per SQLAlchemy column type, chosen from the metadata, so a table added tomorrow is
dumped without naming it here (a type with no codec is an error that names the column):

| type                       | in the file                                         |
|----------------------------|-----------------------------------------------------|
| String, Text, Enum         | a JSON string                                       |
| Integer, BigInteger, …     | a JSON number                                       |
| Float                      | a JSON number, shortest form (`1`, `0.9`, `1e+15`)  |
| Boolean                    | true / false                                        |
| Uuid                       | "8-4-4-4-12" lower-case hex                         |
| DateTime (aware)           | ISO 8601 with offset, UTC, no trailing zero digits  |
| Date                       | "YYYY-MM-DD"                                        |
| JSON                       | the JSON value itself                               |
| LargeBinary                | base64                                              |

A row is a JSON array in the section's column order, written as PostgreSQL's `json_build_array`
writes it (`, ` between values; JSON objects with their keys in jsonb's order: shorter keys
first, then by bytes). On PostgreSQL the server writes each row itself (`sql`), which keeps a
dump of millions of rows near the speed of a plain COPY; elsewhere Python writes the same text
(`encode`). The round-trip test (SQLite → dump → PostgreSQL → dump) holds the two to the same
bytes.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    Uuid,
)
from sqlalchemy import Enum as SAEnum

_JSON_TEXT = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))


class UnsupportedColumn(TypeError):
    pass


@dataclass(frozen=True)
class Codec:
    """`encode(value)`: the JSON text of a non-null value; `sql(column)`: the SQL expression
    whose JSON form (inside `json_build_array`) is that same text; `decode(value)`: the value to
    insert, from the parsed JSON (ValueError if it is not one this column can hold)."""

    kind: str
    encode: Callable[[Any], str]
    sql: Callable[[str], str]
    decode: Callable[[Any], Any]


def _same(column: str) -> str:
    return column


def _text(value: Any) -> str:
    return _JSON_TEXT.encode(value.value if hasattr(value, "value") and not isinstance(value, str) else value)


def _decode_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _int(value: Any) -> str:
    return str(int(value))


def _decode_int(value: Any) -> int:
    if type(value) is not int:
        raise ValueError("expected a whole number")
    return value


def _float(value: Any) -> str:
    """PostgreSQL's float8 output: the shortest digits that read back as the same number, in
    fixed notation from 1e-4 to below 1e15 (without a trailing `.0`), in exponent form outside."""
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    sign, digits, exponent = Decimal(repr(number)).normalize().as_tuple()
    assert isinstance(exponent, int)
    scientific = len(digits) + exponent - 1
    if -4 <= scientific < 15:
        text = format(Decimal(repr(abs(number))).normalize(), "f")
    else:
        mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
        text = f"{mantissa}e{'+' if scientific >= 0 else '-'}{abs(scientific):02d}"
    return ("-" if sign else "") + text


def _decode_float(value: Any) -> float:
    if type(value) not in (int, float):
        raise ValueError("expected a number")
    return float(value)


def _bool(value: Any) -> str:
    return "true" if value else "false"


def _decode_bool(value: Any) -> bool:
    if type(value) is not bool:
        raise ValueError("expected true or false")
    return value


def _uuid(value: Any) -> str:
    return f'"{value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))}"'


def _decode_uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise ValueError("expected a UUID")
    return uuid.UUID(value)


def iso_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with its offset, fraction digits without trailing zeros (as PostgreSQL
    writes a timestamp in JSON)."""
    text = value.astimezone(UTC).isoformat()
    if "." in text:
        head, _, rest = text.partition(".")
        digits, offset = rest[:6], rest[6:]
        digits = digits.rstrip("0")
        text = f"{head}.{digits}{offset}" if digits else f"{head}{offset}"
    return text


def _datetime(value: Any) -> str:
    return f'"{iso_datetime(value)}"'


def _decode_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date and time")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("a date and time without its offset")
    return parsed.astimezone(UTC)


def _date(value: Any) -> str:
    return f'"{value.isoformat()}"'


def _decode_date(value: Any) -> date:
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date")
    return date.fromisoformat(value)


def _jsonb_order(value: Any) -> Any:
    """The value with every object's keys in jsonb's order (length in bytes, then bytes)."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return {k: _jsonb_order(value[k]) for k in keys}
    if isinstance(value, list | tuple):
        return [_jsonb_order(v) for v in value]
    return value


def _json(value: Any) -> str:
    return _JSON_TEXT.encode(_jsonb_order(value))


def _decode_json(value: Any) -> Any:
    return value


def _bytes(value: Any) -> str:
    return f'"{base64.b64encode(bytes(value)).decode()}"'


def _bytes_sql(column: str) -> str:
    return f"translate(encode({column}, 'base64'), E'\\n', '')"


def _decode_bytes(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("expected base64 text")
    return base64.b64decode(value, validate=True)


def _enum_decoder(choices: list[str]) -> Callable[[Any], str]:
    allowed = frozenset(choices)

    def decode(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(sorted(allowed))}")
        return value

    return decode


def codec_for(column: Column) -> Codec:
    """The codec of a column, from its SQLAlchemy type (UnsupportedColumn names it if none fits)."""
    kind = column.type
    while isinstance(kind, TypeDecorator):
        kind = kind.impl if not isinstance(kind.impl, type) else kind.impl()
    if isinstance(kind, SAEnum):
        return Codec("enum", _text, _same, _enum_decoder(list(kind.enums)))
    if isinstance(kind, JSON):
        return Codec("json", _json, lambda c: f"{c}::jsonb", _decode_json)
    if isinstance(kind, Uuid):
        return Codec("uuid", _uuid, _same, _decode_uuid)
    if isinstance(kind, DateTime):
        return Codec("datetime", _datetime, _same, _decode_datetime)
    if isinstance(kind, Date):
        return Codec("date", _date, _same, _decode_date)
    if isinstance(kind, Boolean):
        return Codec("bool", _bool, _same, _decode_bool)
    if isinstance(kind, Integer):
        return Codec("int", _int, _same, _decode_int)
    if isinstance(kind, Float):
        return Codec("float", _float, _same, _decode_float)
    if isinstance(kind, LargeBinary):
        return Codec("bytes", _bytes, _bytes_sql, _decode_bytes)
    if isinstance(kind, String):
        return Codec("text", _text, _same, _decode_text)
    raise UnsupportedColumn(f"{column.table.name}.{column.name}: no dump codec for {column.type!r}")


def encode_row(codecs: list[Codec], row: Any) -> str:
    """One row as the dump writes it (what PostgreSQL's `json_build_array(...)::text` gives)."""
    return "[" + ", ".join("null" if v is None else c.encode(v) for c, v in zip(codecs, row, strict=True)) + "]"
