"""Text the database and the audit hash can store, checked by every service that takes text."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# NUL cannot be stored in PostgreSQL text or JSONB; an unpaired surrogate cannot be encoded as
# UTF-8 (for the database or the audit hash). Either would otherwise fail at the database (a 500).
UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "Remove the NUL character or invalid Unicode from this text."


def storable(value: str) -> str:
    """The text, or ValueError when the database or the audit hash cannot store it."""
    if UNSTORABLE.search(value):
        raise ValueError(UNSTORABLE_MESSAGE)
    return value


# a run of 19 digits or more: a number orjson may not read exactly
_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def json_loads(data: str | bytes) -> Any:
    """JSON text as the standard module reads it, through orjson when that gives the same.

    orjson is several times faster, but reads an integer past 64 bits as a float (losing its
    digits) where `json` keeps it exact, and refuses a few things `json` accepts: so a text with
    a run of 19 or more digits (or anything orjson refuses) goes to `json`."""
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_NUMBER.search(raw):
        return json.loads(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)
