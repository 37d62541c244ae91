"""/api/v1/assets/export: the asset list's filter and sort as one streamed file."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from webapp.api import schemas
from webapp.api.auth import SECURITY, api_actor, token_required
from webapp.api.common import document_errors
from webapp.api.parsing import ApiBlueprint
from webapp.extensions import db
from webapp.models import Role
from webapp.services import asset_search, exports
from webapp.web.downloads import streamed

blp = ApiBlueprint("api_exports", __name__, url_prefix="/api/v1/assets",
                   description="Streamed exports of the asset list (analyst role or higher).")


class AssetExportArgs(schemas.AssetListArgs):
    """The list's filters and sort; no page size or cursor: an export is every matching row."""

    class Meta:
        exclude = ("limit", "cursor")

    format = fields.String(
        required=True, validate=validate.OneOf(list(exports.FORMATS)),
        metadata={"description": "csv: UTF-8 with BOM, formula-safe cells; json: JSON Lines, one "
                                 "inventory-json asset per line (imports back unchanged); xlsx."},
    )


CONTENT = {fmt.mimetype: {"schema": {"type": "string", "format": "binary"}}
           for fmt in exports.FORMATS.values()}
COUNT = {"X-Total-Count": {"description": "How many assets the export holds (counted when it "
                                          "started).", "schema": {"type": "integer"}}}


@blp.route("/export", methods=["GET"])
@token_required(Role.analyst)
@blp.doc(security=SECURITY, responses={"200": {
    "description": "The matching assets in the list's order, streamed as an attachment. "
                   "Audited as one `export` event (format, filter, count).",
    "content": CONTENT, "headers": COUNT,
}})
@blp.arguments(AssetExportArgs, location="query", as_kwargs=False)
@document_errors(blp, (401, 403, 422))
def export_assets(args: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Export the assets a list filter matches, in its sort order (CSV, JSON Lines or XLSX)."""
    fmt = args.pop("format")
    query = asset_search.parse_query(
        {k: ("true" if v is True else "false" if v is False else v) for k, v in args.items()}
    )
    return streamed(exports.start(db.session, api_actor(), query, fmt))
