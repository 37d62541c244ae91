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

from typing import Any

from flask import Flask, current_app, request, url_for

MAX_KEPT = 4_096
_KEY = "built_urls"


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


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
    kept: dict[Any, str] = app.extensions[_KEY]
    url = kept.get(key)
    if url is None:
        url = url_for(endpoint, **values)
        if len(kept) >= MAX_KEPT:
            kept.clear()
        kept[key] = url
    return url


def init_app(app: Flask) -> None:
    app.extensions[_KEY] = {}
    app.add_template_global(kept_url_for, name="url_for")
