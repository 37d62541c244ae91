"""A person's display choices for the asset list (SPEC §5): rows per page and visible columns,
kept per user in `users.preferences`.

    prefs = preferences.asset_list(user)          # ListPreferences(page_size=50, columns=[…])
    preferences.save_asset_list(session, actor, user, page_size=100, columns=["engine", "owner"])

The columns a list can show come from the field catalogue (`models/asset_fields.py`): every
field that is neither secret nor free text, plus the bookkeeping timestamps. The name is always
shown, with the asset's tags under it, so it is not a choice. Whatever is stored is read back
leniently: a column that no longer exists is dropped, a page size that is no longer offered
falls back to the default, so an old preference never breaks the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from webapp.models import AuditAction, User
from webapp.models.asset_fields import CATALOGUE
from webapp.services import audit
from webapp.services.actor import Actor
from webapp.services.errors import ValidationFailed

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
KEY = "asset_list"  # the entry of users.preferences these choices live in
# catalogue fields that make no sense as a narrow column: shown on the asset's own page instead
NOT_COLUMNS = {"name", "tags", "notes", "metadata", "aliases", "connection_string", "port",
               "cloud_resource_id"}
# key -> (label, kind), in the order the table shows them: the catalogue's, except that the
# owner follows the criticality, as the list always showed it; `host` shows the endpoint
_SPECS = {f.name: f for f in CATALOGUE if not f.secret and f.name not in NOT_COLUMNS}
_ORDER = [name for name in _SPECS if name != "owner"]
_ORDER.insert(_ORDER.index("criticality") + 1, "owner")
COLUMNS: dict[str, tuple[str, str]] = {
    **{name: (_SPECS[name].label, _SPECS[name].kind) for name in _ORDER},
    "first_seen_at": ("First seen", "timestamp"),
    "last_seen_at": ("Last seen", "timestamp"),
    "created_at": ("Created", "timestamp"),
    "updated_at": ("Updated", "timestamp"),
}
DEFAULT_COLUMNS = ("engine", "host", "environment", "status", "criticality", "owner", "updated_at")
# the asset attributes a column shows, where they are more than its own
SHOWN_WITH = {"engine": ("engine_version",), "host": ("port",)}


@dataclass(frozen=True)
class ListPreferences:
    page_size: int = DEFAULT_PAGE_SIZE
    columns: tuple[str, ...] = DEFAULT_COLUMNS

    def as_dict(self) -> dict[str, Any]:
        return {"page_size": self.page_size, "columns": list(self.columns)}

    @property
    def fields(self) -> tuple[str, ...]:
        """The asset attributes the chosen columns show (the list loads no others)."""
        return tuple(name for key in self.columns for name in (key, *SHOWN_WITH.get(key, ())))


def asset_list(user: User | None) -> ListPreferences:
    """The person's choices for /assets, or the defaults."""
    stored = ((user.preferences or {}) if user is not None else {}).get(KEY) or {}
    if not isinstance(stored, dict):
        return ListPreferences()
    size = stored.get("page_size")
    columns = stored.get("columns")
    return ListPreferences(
        page_size=size if size in PAGE_SIZES else DEFAULT_PAGE_SIZE,
        columns=(tuple(c for c in COLUMNS if c in columns) if isinstance(columns, list)
                 else DEFAULT_COLUMNS),
    )


def save_asset_list(session: Session, actor: Actor, user: User, *, page_size: Any,
                    columns: list[str]) -> ListPreferences:
    """Keep the person's rows per page and columns (in catalogue order), audited as an update
    of the user. ValidationFailed (422) names a page size not offered or an unknown column."""
    errors = {}
    try:
        size = int(page_size)
    except (TypeError, ValueError):
        size = 0
    if size not in PAGE_SIZES:
        errors["page_size"] = f"Choose {', '.join(map(str, PAGE_SIZES[:-1]))} or {PAGE_SIZES[-1]} rows."
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        errors["columns"] = f"Unknown column: {', '.join(sorted(unknown))[:200]}."
    if errors:
        raise ValidationFailed(errors, "These list preferences cannot be kept.")
    chosen = ListPreferences(size, tuple(c for c in COLUMNS if c in columns))
    before = asset_list(user)
    if chosen == before:
        return chosen
    user.preferences = {**(user.preferences or {}), KEY: chosen.as_dict()}
    audit.record(session, actor, AuditAction.update, "user", user.id,
                 changes={"preferences.asset_list": [before.as_dict(), chosen.as_dict()]},
                 message="changed the asset list's rows per page and columns")
    session.commit()
    return chosen
