"""A started export as a streamed download, for the page and the API alike."""

from __future__ import annotations

from flask import current_app, stream_with_context
from werkzeug.wrappers import Response

from webapp.services.exports import Export


def streamed(export: Export) -> Response:
    """The export's bytes as they are produced (never held whole), as an attachment. The
    request's context, and with it the database session, lives until the last chunk."""
    response = current_app.response_class(stream_with_context(export.chunks),
                                          mimetype=export.format.mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Total-Count"] = str(export.count)
    return response
