"""`url_for` for templates, with the URLs it built kept per app.

A page asks for the same links on every request: the navigation's twenty, the list's sort
headers, its export and filter links. Werkzeug builds each one anew (the rule's converters,
the query string's quoting), about a tenth of the inventory page's time. A URL is a function
of the endpoint, its values and where the app is mounted (the script root), and nothing else
here, as long as the app registers no `url_defaults` callbacks (which could add values from
the request; with one registered, nothing is kept). So a built URL is kept under those inputs
and handed out again.

Not kept: a URL with a `_` option (`_external`, `_scheme`, `_anchor`, `_method`: they read the
request's host or change the answer's form), a relative endpoint (`.index`, which depends on
the current blueprint), and a value that cannot be a dict key. At most MAX_KEPT URLs are kept;
past that the store is emptied and starts over (a list of uuids' links would otherwise grow
without bound).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request, url_for

T = TypeVar("T")
MAX_KEPT = 4_096
_KEY = "built_urls"


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def kept(store: str, key: Any, make: Callable[[], T], limit: int) -> T:
    """`make()`, kept in the app's `store` under `key`: a value that is a function of `key`
    alone. At most `limit` values are kept; past that the store is emptied and starts over."""
    values: dict[Any, Any] = current_app.extensions.setdefault(store, {})
    value = values.get(key)
    if value is None:
        value = make()
        if len(values) >= limit:
            values.clear()
        values[key] = value
    return value  # type: ignore[no-any-return]


def kept_url_for(endpoint: str, **values: Any) -> str:
    """`url_for(endpoint, **values)`, kept: the same URL, built once per app and mount point."""
    app = current_app
    if (endpoint.startswith(".") or any(name.startswith("_") for name in values)
            or any(app.url_default_functions.values())):
        return url_for(endpoint, **values)
    try:
        key = (request.script_root, endpoint, tuple(sorted((k, _frozen(v)) for k, v in values.items())))
        hash(key)
    except TypeError:  # an unhashable value: built each time
        return url_for(endpoint, **values)
    return kept(_KEY, key, lambda: url_for(endpoint, **values), MAX_KEPT)


def init_app(app: Flask) -> None:
    app.add_template_global(kept_url_for, name="url_for")
