"""The columns every export writes, in order, and what each holds (shared by the writers in
`services/exports.py` and `services/export_xlsx.py`).

Columns come from the field catalogue (`models/asset_fields.py`: exportable, never secret), with
the id first and `has_connection_string` and the timestamps last.
"""

from __future__ import annotations

from typing import Any

from webapp.models.asset_fields import CATALOGUE, FieldSpec

FIELDS: tuple[FieldSpec, ...] = tuple(f for f in CATALOGUE if f.exportable and not f.secret)
TIMESTAMPS = ("created_at", "updated_at", "first_seen_at", "last_seen_at", "deleted_at")
COLUMNS: tuple[str, ...] = ("id", *(f.name for f in FIELDS), "has_connection_string", *TIMESTAMPS)
# what each column holds, for the writers: the catalogue's kinds, and the extra columns'
KINDS: dict[str, str] = {
    "id": "id", **{f.name: f.kind for f in FIELDS}, "has_connection_string": "boolean",
    **dict.fromkeys(TIMESTAMPS, "timestamp"),
}
TAGS_AT = COLUMNS.index("tags")
# aliases and metadata are read as the JSON text the database holds (see selected_columns)
JSON_KINDS = ("list", "mapping")
# a spreadsheet reads a cell starting with one of these as a formula (SPEC §9)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
LIST_SEPARATOR = "; "  # what the CSV importer splits aliases and tags on
EMPTY_JSON = ("[]", "{}", "null")

Page = list[list[Any]]  # rows, each a list of values in COLUMNS order


def formula_safe(value: str) -> str:
    """A text cell a spreadsheet will not run: a leading `'` before = + - @, tab or CR."""
    return "'" + value if value.startswith(FORMULA_START) else value
