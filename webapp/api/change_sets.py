"""/api/v1/assets/bulk and /api/v1/change-sets: bulk actions as change sets (SPEC §7). Reading
a change set needs any token; making or undoing one, an analyst's read-write token."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, url_for
from werkzeug.datastructures import MultiDict

from webapp import jobs
from webapp.api import change_set_schemas as schemas
from webapp.api.auth import SECURITY, api_actor, token_required
from webapp.api.common import document_errors
from webapp.api.parsing import ApiBlueprint
from webapp.extensions import db
from webapp.models import ChangeSet, Role
from webapp.services import asset_search, change_sets

blp = ApiBlueprint(
    "api_change_sets", __name__, url_prefix="/api/v1",
    description="Bulk actions: many assets changed as one change set, previewed, undone as one.",
)


def _change_set(change_set: ChangeSet) -> dict[str, Any]:
    return {
        "id": change_set.id, "number": change_set.number, "kind": change_set.kind.value,
        "status": change_set.status.value, "description": change_sets.describe(change_set.params),
        "actor_id": change_set.actor_id, "actor_label": change_set.actor_label,
        "selection": change_set.selection, "params": change_set.params,
        "matched": change_set.matched, "changed": change_set.changed,
        "unchanged": change_set.unchanged, "locked": change_set.locked,
        "refused": change_set.refused, "failed": change_set.failed,
        "progress": {"processed": change_set.processed, "total": change_set.total,
                     "percent": change_set.percent},
        "reported": change_set.reported or [], "undo_of": change_set.undo_of,
        "undone_by": change_set.undone_by, "error": change_set.error,
        "created_at": change_set.created_at, "started_at": change_set.started_at,
        "finished_at": change_set.finished_at,
    }


def _selection(body: dict[str, Any]) -> change_sets.Selection:
    if "ids" in body:
        return change_sets.Selection.of_ids(body["ids"])
    args = {k: ("true" if v is True else "false" if v is False else v) for k, v in body["filter"].items()}
    query = asset_search.parse_query(MultiDict([(k, x) for k, v in args.items()
                                                for x in (v if isinstance(v, list) else [v])]))
    return change_sets.Selection.of_filter(query, body["filter"])


def _started(change_set: ChangeSet) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Apply a queued change set (here when small, else as a job): 202 with it."""
    config = current_app.config
    if change_sets.runs_inline(change_set, int(config.get("BULK_INLINE_MAX") or change_sets.INLINE_MAX)):
        change_set = change_sets.execute(db.session, change_set.id, batch_size=int(
            config.get("BULK_BATCH_SIZE") or change_sets.BATCH_SIZE))
    else:
        jobs.change_sets.dispatch(change_set)
    location = url_for("api_change_sets.get_change_set", change_set_id=change_set.id)
    return _change_set(change_set), 202, {"Location": location}


@blp.route("/assets/bulk", methods=["POST"])
@token_required(Role.analyst, write=True)
@blp.doc(security=SECURITY)
@blp.arguments(schemas.BulkRequest, as_kwargs=False)
@blp.response(202, schemas.ChangeSet, headers={"Location": {"description": "The change set", "schema": {"type": "string"}}})
@blp.alt_response(200, schema=schemas.BulkPreview, description="The preview of a `dry_run`")
@document_errors(blp, (400, 401, 403, 413, 422))
def bulk(body: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Change many assets as one change set: `ids` or a list `filter`; `set` fields, `add_tags`,
    `remove_tags`, or `delete` (to the trash).

    `dry_run`: 200 with what would change (counts and a sample of before -> after), nothing
    written. Otherwise 202 with the change set: applied before the answer when it holds at most
    1,000 assets, else by a job (follow `Location` for its progress). Each changed asset gets
    one audit event carrying the change set's id; an asset edited meanwhile is refused and listed.
    """
    selection = _selection(body)
    action = change_sets.BulkAction.parse(body.get("set"), body.get("add_tags"), body.get("remove_tags"),
                                          body.get("delete", False))
    if body.get("dry_run"):
        found = change_sets.preview(db.session, selection, action)
        return current_app.json.response({"dry_run": True, **found.as_dict()})
    actor = api_actor()
    change_set = change_sets.create(db.session, actor, selection, action)
    return _started(change_sets.apply(db.session, actor, change_set.id))


@blp.route("/change-sets/<uuid:change_set_id>", methods=["GET"])
@token_required(Role.viewer)
@blp.doc(security=SECURITY)
@blp.response(200, schemas.ChangeSet)
@document_errors(blp, (401, 403, 404))
def get_change_set(change_set_id: uuid.UUID) -> dict[str, Any]:
    """A change set: status, counts, progress, and the assets it left as they were, with why."""
    return _change_set(change_sets.get(db.session, change_set_id))


@blp.route("/change-sets/<uuid:change_set_id>/undo", methods=["POST"])
@token_required(Role.analyst, write=True)
@blp.doc(security=SECURITY)
@blp.response(202, schemas.ChangeSet, headers={"Location": {"description": "The undo's change set", "schema": {"type": "string"}}})
@document_errors(blp, (401, 403, 404, 409))
def undo_change_set(change_set_id: uuid.UUID):  # type: ignore[no-untyped-def]
    """Undo a finished change set, as a change set of its own (202 with it). Assets changed
    since are refused and listed; a change set is undone once (409 after)."""
    return _started(change_sets.undo(db.session, api_actor(), change_set_id))
