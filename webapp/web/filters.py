"""Template filters and helpers."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import Flask, request
from markupsafe import escape

from webapp.models import asset_fields
from webapp.services import tags
from webapp.web.urls import kept_url_for

FIELD_LABELS = {
    **asset_fields.LABELS,
    "deleted_at": "Deleted",
    "locked_fields": "Locked fields",
}


def field_label(name: str) -> str:
    return FIELD_LABELS.get(name, name.replace("_", " ").capitalize())


def when(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return value.strftime("%Y-%m-%d %H:%M UTC")


def show(value: Any) -> str:
    """A field value as a person reads it in a table or diff."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):  # metadata: `nmap_cpe: cpe:/a:…`, each value read as above
        return "; ".join(f"{k}: {show(v)}" for k, v in value.items()) or "—"
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        # timestamps in audit diffs are ISO strings
        return when(value)
    return str(getattr(value, "value", value))


def about(n: int) -> str:
    """An estimate as a person says it: 1,234 → "1,200"; 1,234,567 → "1.2 million"."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}".rstrip("0").rstrip(".") + " million"
    if n >= 10_000:
        return f"{round(n, -3):,}"
    return f"{round(n, -2):,}"


def tag_colour(tag: Any) -> str:
    """A tag chip's palette colour, for its `data-colour` (styled in app.css)."""
    return tags.colour_name(tag)


def url_with(**changes: Any) -> str:
    """The current URL with some query arguments changed (None removes one). Kept per request:
    a list page asks for the same link twice (`href` and `hx-get`) in every sortable header."""
    try:
        key: Any = tuple(sorted(changes.items()))
        hash(key)
    except TypeError:  # a list value (a repeated argument): not kept
        return _url_with(changes)
    cache = vars(request._get_current_object()).setdefault("_url_with", {})  # type: ignore[attr-defined]
    if key not in cache:
        cache[key] = _url_with(changes)
    return cache[key]  # type: ignore[no-any-return]


def _url_with(changes: dict[str, Any]) -> str:
    # `_name` arguments would be read by url_for as its own options (`_method=POST`: a 500)
    # every value of a repeated argument (`engine=postgresql&engine=mysql`) is kept
    kept = vars(request._get_current_object())  # type: ignore[attr-defined]
    if "_url_with_args" not in kept:
        kept["_url_with_args"] = {k: v for k, v in request.args.to_dict(flat=False).items()
                                  if not k.startswith("_")}
    args: dict[str, Any] = dict(kept["_url_with_args"])
    for key, value in changes.items():
        if value is None or value == "":
            args.pop(key, None)
        else:
            args[key] = value
    return kept_url_for(request.endpoint or "", **(request.view_args or {}), **args)


def aria(field: Any) -> dict[str, str]:
    """A form field's ARIA attributes: only those that apply (WTForms would render a None value
    as the text "None")."""
    attrs = {}
    if field.errors:
        attrs["aria-invalid"] = "true"
    if field.description or field.errors:
        attrs["aria-describedby"] = f"{field.id}-help"
    return attrs


# Unicode's bidirectional controls (embeddings, overrides, isolates, marks): stored verbatim, but
# shown as a visible "[U+202E]" so a name like "invoice\u202efdp.exe" cannot pass as "invoiceexe.pdf"
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def reveal_bidi(value: Any) -> Any:
    """Jinja's finalize: every `{{ value }}` with a bidi control gets it named in plain text.
    Markup (WTForms inputs, `tojson`, macros) is left as it is: an edit form keeps the value."""
    if type(value) is str and BIDI_CONTROLS.search(value):
        return BIDI_CONTROLS.sub(lambda m: f"[U+{ord(m.group()):04X}]", value)
    return value


# what escaping or the bidi reveal would change in a text
_SPECIAL = re.compile("[&<>\"'" + BIDI_CONTROLS.pattern[1:])


def written(value: Any) -> str:
    """What `{{ value }}` writes (the environment's finalize, `reveal_bidi`, then escaping), for
    the parts of pages written in Python. Most values are text with nothing to escape or
    reveal: one search finds that, and the text is written as it is."""
    if type(value) is str and not _SPECIAL.search(value):
        return value
    return str(escape(reveal_bidi(value)))


def init_app(app: Flask) -> None:
    app.jinja_env.finalize = reveal_bidi
    app.add_template_global(aria)
    app.add_template_filter(field_label)
    app.add_template_filter(when)
    app.add_template_filter(show)
    app.add_template_filter(tag_colour)
    app.add_template_filter(about)
    app.add_template_global(url_with)
    from webapp.web.asset_rows import asset_row_cells  # it uses this module's filters

    app.add_template_global(asset_row_cells)
    from webapp.web.history_items import history_items

    app.add_template_global(history_items)
