"""The JSON API (/api/v1): bearer tokens, marshmallow schemas, a generated OpenAPI document."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


class InventoryApi(Api):
    # Errors are problem+json (webapp/web/errors.py), documented per operation with the Problem
    # schema; flask-smorest's catch-all "default" response would describe its own JSON Error
    # shape, which this app never sends, and would hide undocumented status codes.
    DEFAULT_ERROR_RESPONSE_NAME = None


api = InventoryApi()

API_CONFIG = {
    "API_TITLE": "Asset Inventory API",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
}


def init_api(app: Flask) -> None:
    from webapp.api import (
        assets,
        audit,
        change_sets,
        conflicts,
        docs,
        exports,
        health,
        imports,
        policy,
        proposals,
        relationships,
        tasks,
        webhooks,
    )
    from webapp.api.auth import token_required
    from webapp.extensions import csrf

    for key, value in API_CONFIG.items():
        app.config.setdefault(key, value)
    api.init_app(app, spec_kwargs={
        "info": {"description": "Automation access to the inventory. Authenticate with "
                                "`Authorization: Bearer <token>` (tokens from /account/tokens)."},
    })
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "inv_…"}
    )
    for blp in (assets.blp, exports.blp, change_sets.blp, audit.blp, imports.blp, conflicts.blp,
                proposals.blp,
                relationships.blp, policy.blp, tasks.blp, webhooks.blp, health.blp):
        api.register_blueprint(blp)
        csrf.exempt(blp)
    app.register_blueprint(docs.bp)
    # the OpenAPI document needs a token like every endpoint but the health probes (SPEC §7)
    app.view_functions["api-docs.openapi_json"] = token_required()(app.view_functions["api-docs.openapi_json"])
