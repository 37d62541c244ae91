"""What every page's layout shows beside its own content: the review queue's open count in the
main navigation, and the `age` filter the lists use."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, g
from sqlalchemy.exc import SQLAlchemyError

from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.services import conflicts


def open_conflicts() -> int | None:
    """The number of open review items, read once per request and only when a page shows it,
    from the counts cache (a commit that writes review items drops it)."""
    if "open_conflicts" not in g:
        try:
            g.open_conflicts = conflicts.cached_open_count(db.session)
        except SQLAlchemyError:  # an error page after a database failure still renders
            g.open_conflicts = None
    return g.open_conflicts


def forget_open_conflicts() -> None:
    """The count changed in this request (an item was resolved): read it again when shown."""
    g.pop("open_conflicts", None)


def age(value: datetime | None) -> str:
    """How long ago, as a person says it in a queue: `5 min`, `3 h`, `2 d`."""
    if value is None:
        return "—"
    seconds = max(0, int((utcnow() - value).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def init_app(app: Flask) -> None:
    app.add_template_filter(age)

    @app.context_processor
    def layout() -> dict[str, Any]:
        return {"open_conflicts": open_conflicts}
