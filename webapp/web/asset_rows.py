"""The asset list's table body, rendered in Python (`templates/assets/index.html`).

A Jinja macro per cell (and `url_for` per link) was most of the page's cost: 50 rows of 8
columns are 400 macro calls, each building a frame and escaping its arguments. This writes the
same HTML with one call for the whole body; links are built once per page (the asset link from
one `url_for` with the id substituted, the tag links from one list URL with the tag put in).
Every value is what `{{ value }}` writes: through the template environment's `finalize`
(`reveal_bidi`), then escaped; a text with nothing to escape or reveal (one regex search says
so) is written as it is.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote_plus

from markupsafe import Markup

from webapp.services import preferences, tags
from webapp.web.filters import url_with, written
from webapp.web.urls import kept_url_for

BADGES = {"environment": "env", "status": "status", "criticality": "crit",
          "data_classification": "class"}
_PLACEHOLDER = uuid.UUID(int=0)
_TAG_MARKER = "tag0marker0for0the0list0page"  # letters and digits: quoting leaves it as it is
QUERY_SAFE = "!$'()*,/:;?@"  # what werkzeug leaves unquoted in a query value (werkzeug.urls)
MUTED_DASH = '<span class="muted">—</span>'


class AssetRowCells:
    """`cells.name(asset)`: the name cell of one row, with its tags; `cells(asset)`: the chosen
    columns' cells of the row. Both Markup."""

    def __init__(self, columns: Iterable[str], tag_url: Callable[[str], str]) -> None:
        self.columns = [(key, preferences.COLUMNS[key][1]) for key in columns]
        self._show_url = kept_url_for("assets.show", asset_id=_PLACEHOLDER)
        self._tag_url = tag_url
        self._tag_urls: dict[str, Markup] = {}
        # a choice's cell (badge, engine, choice column) is the same for every row of a value
        self._choice_cells: dict[tuple[str, Any], str] = {}

    def rows(self, assets: Iterable[Any], select: bool) -> Markup:
        """The table body's rows: with `select`, each starts with its bulk checkbox."""
        e = written
        out = []
        for asset in assets:
            out.append("<tr>")
            if select:
                out.append(f'<td class="select"><label class="check"><input type="checkbox" name="ids" '
                           f'value="{asset.id}" form="bulk-form"><span class="visually-hidden">Select '
                           f"{e(asset.name)}</span></label></td>")
            out.append(self.name(asset))
            out.append(self(asset))
            out.append("</tr>\n")
        return Markup("".join(out))

    def name(self, asset: Any) -> Markup:
        e = written
        name = e(asset.name)
        href = self._show_url.replace(str(_PLACEHOLDER), str(asset.id))
        parts = [f'<td class="cell-name"><a class="truncate" href="{e(href)}" title="{name}">'
                 f"{name}</a>"]
        asset_tags = asset.tags
        if asset_tags:
            parts.append('<div class="row-tags">')
            for tag in asset_tags:
                link = self._tag_urls.get(tag.name)
                if link is None:
                    link = self._tag_urls[tag.name] = e(self._tag_url(tag.name))
                parts.append(f'<a class="tag" data-colour="{e(tags.colour_name(tag))}" '
                             f'href="{link}">{e(tag.name)}</a>')
            parts.append("</div>")
        parts.append("</td>")
        return Markup("".join(parts))

    def __call__(self, asset: Any) -> Markup:
        return Markup("".join([self.cell(asset, key, kind) for key, kind in self.columns]))

    def cell(self, asset: Any, key: str, kind: str) -> str:
        e = written
        if key == "engine":
            version = asset.engine_version
            extra = f' <span class="muted">{e(version)}</span>' if version else ""
            return f"{self._choice_cell(key, asset.engine)[:-5]}{extra}</td>"
        if key == "host":
            if not asset.host:
                return '<td class="mono cell-host">—</td>'
            endpoint = e(f"{asset.host}:{asset.port}" if asset.port else f"{asset.host}")
            return (f'<td class="mono cell-host"><span class="truncate" title="{endpoint}" '
                    f'tabindex="0">{endpoint}</span></td>')
        value = getattr(asset, key)
        if key in BADGES or kind == "choice":
            return self._choice_cell(key, value)
        if value is None or value == "":
            return f"<td>{MUTED_DASH}</td>"
        if kind == "timestamp":  # digits, dashes, colons and "UTC": nothing to escape
            day = f"{value.year:04d}-{value.month:02d}-{value.day:02d}"  # what `when` writes, unparsed
            return (f'<td><time datetime="{value.isoformat()}" title="{day} {value.hour:02d}:'
                    f'{value.minute:02d} UTC">{day}</time></td>')
        if kind == "boolean":
            return f"<td>{'yes' if value else 'no'}</td>"
        if kind in ("integer", "number"):
            return f'<td class="num">{e(value)}</td>'
        text = e(value)
        return (f'<td class="cell-text"><span class="truncate" title="{text}" tabindex="0">'
                f"{text}</span></td>")

    def _choice_cell(self, key: str, value: Any) -> str:
        cached = self._choice_cells.get((key, value))
        if cached is None:
            e = written
            if key in BADGES:
                cached = f"<td>{badge(value, BADGES[key])}</td>"
            elif key == "engine":
                cached = f"<td>{e(value.value)}</td>"
            elif value is None or value == "":
                cached = f"<td>{MUTED_DASH}</td>"
            else:
                cached = f"<td>{e(value.value.replace('_', ' '))}</td>"
            self._choice_cells[(key, value)] = cached
        return cached


def badge(value: Any, kind: str) -> str:
    """What `_macros/ui.html`'s `badge(value, kind)` writes."""
    if value is None or value == "":
        return MUTED_DASH
    raw = getattr(value, "value", value)
    return (f'<span class="badge badge-{written(kind)} badge-{written(raw)}">'
            f"{written(str(raw).replace('_', ' '))}</span>")


def asset_row_cells(columns: Iterable[str]) -> AssetRowCells:
    """The row renderer of one list page (a template global): `{% set cells =
    asset_row_cells(display.columns) %}` once, then `{{ cells.rows(page.items, select) }}`.

    A tag's link is the list's URL with `tag` set (and the position dropped): built once with a
    marker for the tag, then the tag put in the marker's place, quoted as werkzeug quotes a
    query value, instead of a URL built per tag."""
    template = url_with(tag=_TAG_MARKER, after=None, before=None)
    head, marker, tail = template.partition(f"tag={_TAG_MARKER}")
    if not marker:  # cannot happen (url_with sets the tag); built per tag all the same
        return AssetRowCells(columns, lambda name: url_with(tag=name, after=None, before=None))
    return AssetRowCells(columns, lambda name: f"{head}tag={quote_plus(name, safe=QUERY_SAFE)}{tail}")
