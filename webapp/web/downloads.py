"""A started export as a streamed download, for the page and the API alike."""

from __future__ import annotations

from collections.abc import Iterator

from flask import current_app, stream_with_context
from werkzeug.wrappers import Response

from webapp.services.exports import Export


def streamed(export: Export) -> Response:
    """The export's bytes as they are produced (never held whole), as an attachment."""
    response = attachment(export.chunks, export.format.mimetype, export.filename)
    response.headers["X-Total-Count"] = str(export.count)
    return response


def attachment(chunks: Iterator[bytes], mimetype: str, filename: str) -> Response:
    """Bytes streamed as a download, never held whole. The request's context, and with it the
    database session, lives until the last chunk."""
    response = current_app.response_class(stream_with_context(chunks), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
