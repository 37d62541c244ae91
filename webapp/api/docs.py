"""The browsable API documentation, from vendored Swagger UI, with the OpenAPI document embedded
in the page (no second request, so the page works wherever its own request was allowed):

- `/api/v1/docs` needs a bearer token, like `/api/v1/openapi.json` and every other endpoint;
- `/api-docs` is the same page for a person signed in to the web UI (a browser sends no token).
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from webapp.api.auth import token_required
from webapp.models import Role
from webapp.web.session import role_required

bp = Blueprint("api_docs", __name__)

# Swagger UI sets style attributes from its bundle; scripts stay 'self' only.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def _page():  # type: ignore[no-untyped-def]
    from webapp.api import api

    spec = current_app.json.dumps(api.spec.to_dict())
    body = render_template("api/docs.html", spec=spec)
    return body, 200, {"Content-Security-Policy": DOCS_CSP}


@bp.route("/api/v1/docs")
@token_required()
def docs():  # type: ignore[no-untyped-def]
    return _page()


@bp.route("/api-docs")
@role_required(Role.viewer)
def docs_for_people():  # type: ignore[no-untyped-def]
    return _page()
