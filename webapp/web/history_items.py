"""The History tab's events, rendered in Python (`templates/assets/history.html`).

Fifty events, each with its action's badge and a table of its changes, were two macro calls and
a filter per cell: most of the tab's time, more than its query at any event count. This writes
the same items with one call for the list. Every value is what `{{ value }}` writes (through the
environment's `finalize` and escaped), labels and values through the same filters
(`field_label`, `show`, `when`) the template used.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from markupsafe import Markup

from webapp.web.asset_rows import badge
from webapp.web.filters import field_label, show, when, written
from webapp.web.urls import kept_url_for

RELATIONSHIP_ACTIONS = ("link", "unlink")


def history_items(asset: Any, events: Iterable[Any]) -> Markup:
    """The `<li>` of each event, newest first (a template global)."""
    e = written
    out = []
    for event in events:
        action = event.action.value
        changes = event.changes or {}
        head = [badge(event.action, "action"),
                f'<time datetime="{event.occurred_at.isoformat()}">{e(when(event.occurred_at))}</time>',
                f"by <strong>{e(event.actor_label)}</strong>"]
        version = changes.get("version")
        if version and version[1]:
            href = kept_url_for("assets.history", asset_id=asset.id, version=version[1])
            head.append(f'<a href="{e(href)}">version {e(version[1])}</a>')
        if event.message:
            head.append(f'<span class="muted">· {e(event.message)}</span>')
        out.append('<li>\n      <div class="event-head">\n        ' + "\n        ".join(head) + "\n      </div>\n")
        if action in RELATIONSHIP_ACTIONS:
            pass  # a relationship: the message names both ends; the link itself is on the Relationships tab
        elif changes and (len(changes) > 1 or "version" not in changes) and action != "create":
            out.append(_diff_table(changes))
        elif action == "create":
            out.append(f"<details><summary>Initial values</summary>{_diff_table(changes)}</details>")
        out.append("\n    </li>\n")
    return Markup("".join(out))


def _diff_table(changes: dict[str, Any]) -> str:
    """What `_macros/ui.html`'s `diff_table(changes)` writes: each changed field but the
    version, in name order, before and after."""
    e = written
    rows = [f'<tr><th scope="row">{e(field_label(field))}</th><td class="old">{e(show(pair[0]))}</td>'
            f'<td class="new">{e(show(pair[1]))}</td></tr>'
            for field, pair in sorted(changes.items(), key=lambda item: item[0].lower()) if field != "version"]
    return ('<table class="diff">\n  <thead><tr><th scope="col">Field</th><th scope="col">Before</th>'
            '<th scope="col">After</th></tr></thead>\n  <tbody>\n  ' + "\n  ".join(rows) + "\n  </tbody>\n</table>")
