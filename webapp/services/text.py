"""Text the database and the audit hash can store, checked by every service that takes text."""

from __future__ import annotations

import re

# NUL cannot be stored in PostgreSQL text or JSONB; an unpaired surrogate cannot be encoded as
# UTF-8 (for the database or the audit hash). Either would otherwise fail at the database (a 500).
UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "Remove the NUL character or invalid Unicode from this text."


def storable(value: str) -> str:
    """The text, or ValueError when the database or the audit hash cannot store it."""
    if UNSTORABLE.search(value):
        raise ValueError(UNSTORABLE_MESSAGE)
    return value
