"""Parts of the asset list page kept per app, because they depend on the request's query alone.

The filter form is a sixth of the list's HTML and, with its option lists, a fifth of its
rendering: the same few kilobytes for every person looking at the same filter. It reads
nothing but the query (the choices are enums, the policy controls are the catalogue's, the
links are fixed), so its HTML is kept under the query's filter state and rendered once per
state. At most MAX_KEPT states are kept; past that the store is emptied and starts over
(typed searches make new states).
"""

from __future__ import annotations

import dataclasses

from flask import current_app
from markupsafe import Markup

from webapp import policy as policy_controls
from webapp.assets import bp
from webapp.services import asset_search
from webapp.web.urls import kept

MAX_KEPT = 1_024
_KEY = "asset_filter_forms"
# what the form does not show: the page's position and size
NOT_SHOWN = frozenset({"limit", "after", "before", "cursor", "count"})


def _state(query: asset_search.AssetQuery) -> str:
    return repr([(f.name, getattr(query, f.name)) for f in dataclasses.fields(query)
                 if f.name not in NOT_SHOWN])


@bp.app_template_global()
def filter_form(query: asset_search.AssetQuery) -> Markup:
    """The list's filter form (`templates/assets/_filters.html`) for `query`, kept per state."""
    def render() -> Markup:
        template = current_app.jinja_env.get_template("assets/_filters.html")
        return Markup(template.render(query=query, filters=asset_search.ENUM_FILTERS,
                                      policy_controls=list(policy_controls.CONTROLS.values())))

    return kept(_KEY, _state(query), render, MAX_KEPT)
