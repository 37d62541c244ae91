"""/api/v1/docs: a browsable view of the OpenAPI document, from vendored Swagger UI."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("api_docs", __name__)

# Swagger UI sets style attributes from its bundle; scripts stay 'self' only.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


@bp.route("/api/v1/docs")
def docs():  # type: ignore[no-untyped-def]
    body = render_template("api/docs.html")
    return body, 200, {"Content-Security-Policy": DOCS_CSP}
