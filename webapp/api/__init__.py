"""The JSON API (/api/v1): bearer tokens, marshmallow schemas, a generated OpenAPI document."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from flask_smorest import Api


class InventoryApi(Api):
    """flask-smorest's Api, documenting its blueprints when the OpenAPI document is first read
    rather than when they are registered: turning every operation's schemas into OpenAPI was
    80 % of `create_app` (about 0.2 s), paid by every worker and every test app, most of which
    never serve `/api/v1/openapi.json`."""

    # Errors are problem+json (webapp/web/errors.py), documented per operation with the Problem
    # schema; flask-smorest's catch-all "default" response would describe its own JSON Error
    # shape, which this app never sends, and would hide undocumented status codes.
    DEFAULT_ERROR_RESPONSE_NAME = None

    _spec: Any = None
    _undocumented: list[tuple[Any, str, Any]]
    _documenting = threading.RLock()
    _in_progress = False

    @property  # type: ignore[override]
    def spec(self) -> Any:
        if getattr(self, "_undocumented", None):
            # another thread waits for the whole document; this thread's own reads while it
            # documents a view (re-entrant lock, flag set) get the spec as it stands
            with self._documenting:
                if self._in_progress:
                    return self._spec
                self._in_progress = True
                try:
                    while self._undocumented:
                        blp, name, parameters = self._undocumented.pop(0)
                        blp.register_views_in_doc(self, self._app, self._spec, name=name, parameters=parameters)
                        self._spec.tag({"name": name, "description": blp.description})
                finally:
                    self._in_progress = False
        return self._spec

    @spec.setter
    def spec(self, value: Any) -> None:  # a new spec (init_app) starts with nothing to document
        self._spec = value
        self._undocumented = []

    def register_blueprint(self, blp: Any, *, parameters: Any = None, **options: Any) -> None:
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._undocumented.append((blp, name, parameters))


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
