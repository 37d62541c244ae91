"""Every role against every mutating route (SPEC §4): the server checks, not the template.

anonymous → sent to /login; under-privileged → 403 in the app layout with nothing written;
allowed → the change happens and is visible.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import current_app
from sqlalchemy import func, select, update

from tests.conftest import PASSWORD
from tests.factories import make_asset
from tests.review_factories import make_run, possible_duplicate
from tests.web.pages import in_app_layout
from webapp import jobs
from webapp.models import (
    Asset,
    AssetRelationship,
    AuditAction,
    AuditEvent,
    ChangeSet,
    Conflict,
    ConflictStatus,
    DeliveryStatus,
    ImportRun,
    ImportStatus,
    PolicyException,
    Role,
    Setting,
    Tag,
    TaskRun,
    User,
    Webhook,
    WebhookDelivery,
)
from webapp.models.base import utcnow
from webapp.services import assets as asset_service
from webapp.services import change_sets, imports, relationships, review_bulk
from webapp.services import webhooks as webhook_service
from webapp.services.actor import Actor

ROLES = ["anonymous", "viewer", "analyst", "reviewer", "admin"]
SYSTEM = Actor.system("test")
SECRET = "postgresql://app:s3cret-pw@db.internal/orders"


@dataclass(frozen=True)
class Route:
    """One route under test: how to prepare, what to send, how to see it worked."""

    label: str
    method: str
    path: str  # formatted with the prepared objects: {asset}, {user}, {run}, {conflict}
    needs: Role
    prepare: Callable[[Any, Any], dict[str, Any]]
    data: Callable[[dict[str, Any]], dict[str, str]]
    succeeded: Callable[[Any, dict[str, Any], Any], bool]
    unchanged: Callable[[Any, dict[str, Any]], bool]


# --- preparing the world ------------------------------------------------------------------------

def _live_asset(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    asset = make_asset(session, name="orders-db", tags=["legacy"], connection_string=SECRET)
    return {"asset": asset.id, "version": asset.version}


def _trashed_asset(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    asset = make_asset(session, name="old-db")
    asset_service.delete(session, SYSTEM, asset.id)
    return {"asset": asset.id, "version": asset.version}


def _edited_asset(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    asset = make_asset(session, name="orders-db")
    asset = asset_service.update(session, SYSTEM, asset.id, {"name": "orders-db-v2"},
                                 expected_version=asset.version)
    return {"asset": asset.id, "version": asset.version}


def _nothing(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {}


def _target_user(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {"user": make_user("viewer", email="target@example.com").id}


INVENTORY = b'[{"name": "scanned-db", "engine": "mysql", "host": "scan.example.com", "port": 3306}]'


def _thread_runner(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    current_app.config["REDIS_URL"] = None  # an allowed upload runs here, and is waited for
    return {}


def _queued_run(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    _thread_runner(session, make_user)
    run = imports.create_run(session, SYSTEM, data=INVENTORY, filename="inventory.json")
    return {"run": run.id}


def _finished_run(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    ctx = _queued_run(session, make_user)
    imports.execute(session, ctx["run"])
    return ctx


def _open_conflict(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    candidate = make_asset(session, name="orders-db", owner=None)
    item = possible_duplicate(session, candidate, {"name": "orders-db", "engine": "postgresql",
                                                   "owner": "team-b@example.com"},
                              run=make_run(session))
    return {"conflict": item.id, "asset": candidate.id}


def _dismissed_in_bulk(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    ctx = _open_conflict(session, make_user)
    resolution = review_bulk.bulk_resolve(session, SYSTEM, [ctx["conflict"]], "dismiss")
    return {**ctx, "change_set": resolution.change_set_id}


def _two_assets(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    asset, other = make_asset(session, name="orders-db"), make_asset(session, name="app-db")
    return {"asset": asset.id, "other": other.id}


def _linked_assets(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    ctx = _two_assets(session, make_user)
    rel = relationships.create(session, SYSTEM, source_id=ctx["other"], target_id=ctx["asset"],
                               kind="depends_on")
    return {**ctx, "relationship": rel.id}


BULK_OWNER = "bulk@example.com"


def _bulk_preview(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A bulk change of the live asset's owner, previewed (nothing changed yet)."""
    ctx = _live_asset(session, make_user)
    preview = change_sets.create(session, SYSTEM, change_sets.Selection.of_ids([ctx["asset"]]),
                                 change_sets.BulkAction.parse({"owner": BULK_OWNER}))
    return {**ctx, "change_set": preview.id}


def _bulk_applied(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    ctx = _bulk_preview(session, make_user)
    change_sets.apply(session, SYSTEM, ctx["change_set"])
    change_sets.execute(session, ctx["change_set"])
    return ctx


# --- looking at the result ----------------------------------------------------------------------

def _relationships(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(AssetRelationship))


def _asset(session, ctx) -> Asset | None:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(Asset, ctx["asset"])


def _asset_named(session, name: str) -> Asset | None:  # type: ignore[no-untyped-def]
    return session.scalar(select(Asset).where(Asset.name == name))


def _tags(session, ctx) -> list[str]:  # type: ignore[no-untyped-def]
    return [t.name for t in _asset(session, ctx).tags]


def _user_role(session, ctx) -> str:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(User, ctx["user"]).role.value


def _setting(session, key: str) -> Any:  # type: ignore[no-untyped-def]
    session.expire_all()
    row = session.get(Setting, key)
    return row.value if row else None


def _runs(session) -> int:  # type: ignore[no-untyped-def]
    jobs.wait_for_threads()
    session.expire_all()
    return session.scalar(select(func.count()).select_from(ImportRun))


def _run_status(session, ctx) -> ImportStatus:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(ImportRun, ctx["run"]).status


def _conflict_status(session, ctx) -> ConflictStatus:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(Conflict, ctx["conflict"]).status


def _change_sets(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(ChangeSet))


def _last_event(session) -> AuditEvent:  # type: ignore[no-untyped-def]
    return session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))


def _page_shows(*texts: str) -> Callable[[Any, dict[str, Any], Any], bool]:
    def check(session, ctx, response) -> bool:  # type: ignore[no-untyped-def]
        body = response.get_data(as_text=True)
        return response.status_code == 200 and all(t in body for t in texts)

    return check


def _always(session, ctx) -> bool:  # type: ignore[no-untyped-def]
    return True


ASSET_FORM = {"engine": "postgresql", "host": "db9.example.com", "port": "5432",
              "environment": "staging", "status": "active"}

ROUTES = [
    Route(
        "GET /assets/new", "GET", "/assets/new", Role.analyst, _nothing, lambda ctx: {},
        _page_shows("Save asset"), _always,
    ),
    Route(
        "POST /assets/new", "POST", "/assets/new", Role.analyst, _nothing,
        lambda ctx: {**ASSET_FORM, "name": "brand-new-db"},
        lambda s, ctx, r: r.status_code == 303 and _asset_named(s, "brand-new-db") is not None,
        lambda s, ctx: _asset_named(s, "brand-new-db") is None,
    ),
    Route(
        "POST /assets/<id>/edit", "POST", "/assets/{asset}/edit", Role.analyst, _live_asset,
        lambda ctx: {**ASSET_FORM, "name": "orders-db-renamed", "version": str(ctx["version"])},
        lambda s, ctx, r: r.status_code == 303 and _asset(s, ctx).name == "orders-db-renamed",
        lambda s, ctx: _asset(s, ctx).name == "orders-db",
    ),
    Route(
        "POST /assets/<id>/delete", "POST", "/assets/{asset}/delete", Role.analyst, _live_asset,
        lambda ctx: {"version": str(ctx["version"])},
        lambda s, ctx, r: r.status_code == 303 and _asset(s, ctx).deleted_at is not None,
        lambda s, ctx: _asset(s, ctx).deleted_at is None,
    ),
    Route(
        "POST /assets/<id>/restore", "POST", "/assets/{asset}/restore", Role.analyst,
        _trashed_asset, lambda ctx: {},
        lambda s, ctx, r: r.status_code == 303 and _asset(s, ctx).deleted_at is None,
        lambda s, ctx: _asset(s, ctx).deleted_at is not None,
    ),
    Route(
        "POST /assets/<id>/revert", "POST", "/assets/{asset}/revert", Role.analyst, _edited_asset,
        lambda ctx: {"to_version": "1", "version": str(ctx["version"])},
        lambda s, ctx, r: r.status_code == 303 and _asset(s, ctx).name == "orders-db",
        lambda s, ctx: _asset(s, ctx).name == "orders-db-v2",
    ),
    Route(
        "POST /assets/<id>/tags", "POST", "/assets/{asset}/tags", Role.analyst, _live_asset,
        lambda ctx: {"tag": "pci"},
        lambda s, ctx, r: r.status_code == 303 and _tags(s, ctx) == ["legacy", "pci"],
        lambda s, ctx: _tags(s, ctx) == ["legacy"],
    ),
    Route(
        "POST /assets/<id>/tags/<tag>/delete", "POST", "/assets/{asset}/tags/legacy/delete",
        Role.analyst, _live_asset, lambda ctx: {},
        lambda s, ctx, r: r.status_code == 303 and _tags(s, ctx) == [],
        lambda s, ctx: _tags(s, ctx) == ["legacy"],
    ),
    Route(
        "POST /assets/<id>/purge", "POST", "/assets/{asset}/purge", Role.admin, _trashed_asset,
        lambda ctx: {},
        lambda s, ctx, r: r.status_code == 303 and _asset(s, ctx) is None,
        lambda s, ctx: _asset(s, ctx) is not None,
    ),
    Route(
        "POST /assets/<id>/reveal", "POST", "/assets/{asset}/reveal", Role.admin, _live_asset,
        lambda ctx: {},
        lambda s, ctx, r: (
            r.status_code == 200 and SECRET in r.get_data(as_text=True)
            and _last_event(s).action == AuditAction.reveal_secret
        ),
        _always,  # a refused reveal is checked by the audit count and the missing secret
    ),
    Route(
        "POST /imports", "POST", "/imports", Role.analyst, _thread_runner,
        lambda ctx: {"file": (io.BytesIO(INVENTORY), "inventory.json")},  # type: ignore[dict-item]
        lambda s, ctx, r: r.status_code == 303 and _runs(s) == 1,
        lambda s, ctx: _runs(s) == 0,
    ),
    Route(
        "POST /imports/<id>/retry", "POST", "/imports/{run}/retry", Role.analyst, _finished_run,
        lambda ctx: {},
        lambda s, ctx, r: r.status_code == 303 and _runs(s) == 2,
        lambda s, ctx: _runs(s) == 1,
    ),
    Route(
        "POST /imports/<id>/cancel", "POST", "/imports/{run}/cancel", Role.analyst, _queued_run,
        lambda ctx: {},
        lambda s, ctx, r: r.status_code == 303 and _run_status(s, ctx) == ImportStatus.cancelled,
        lambda s, ctx: _run_status(s, ctx) == ImportStatus.queued,
    ),
    Route(
        "POST /conflicts/<id>/resolve", "POST", "/conflicts/{conflict}/resolve", Role.reviewer,
        _open_conflict, lambda ctx: {"action": "merge"},
        lambda s, ctx, r: (r.status_code == 303 and _conflict_status(s, ctx) == ConflictStatus.merged
                           and _asset(s, ctx).owner == "team-b@example.com"),
        lambda s, ctx: (_conflict_status(s, ctx) == ConflictStatus.open
                        and _asset(s, ctx).owner is None),
    ),
    Route(
        "POST /conflicts/bulk", "POST", "/conflicts/bulk", Role.reviewer, _open_conflict,
        lambda ctx: {"ids": str(ctx["conflict"]), "action": "dismiss"},
        lambda s, ctx, r: r.status_code == 303 and _conflict_status(s, ctx) == ConflictStatus.dismissed,
        lambda s, ctx: _conflict_status(s, ctx) == ConflictStatus.open,
    ),
    Route(
        "POST /conflicts/undo/<id>", "POST", "/conflicts/undo/{change_set}", Role.reviewer,
        _dismissed_in_bulk, lambda ctx: {},
        lambda s, ctx, r: r.status_code == 303 and _conflict_status(s, ctx) == ConflictStatus.open,
        lambda s, ctx: _conflict_status(s, ctx) == ConflictStatus.dismissed,
    ),
    Route(
        "POST /assets/<id>/relationships", "POST", "/assets/{asset}/relationships", Role.analyst,
        _two_assets,
        lambda ctx: {"kind": "depends_on", "direction": "outgoing", "target_id": str(ctx["other"])},
        lambda s, ctx, r: r.status_code == 303 and _relationships(s) == 1,
        lambda s, ctx: _relationships(s) == 0,
    ),
    Route(
        "POST /assets/<id>/relationships/<rid>/delete", "POST",
        "/assets/{asset}/relationships/{relationship}/delete", Role.analyst, _linked_assets,
        lambda ctx: {},
        lambda s, ctx, r: r.status_code == 303 and _relationships(s) == 0,
        lambda s, ctx: _relationships(s) == 1,
    ),
    Route(
        "POST /relationships/<rid>/delete", "POST", "/relationships/{relationship}/delete",
        Role.analyst, _linked_assets, lambda ctx: {},
        lambda s, ctx, r: r.status_code == 303 and _relationships(s) == 0,
        lambda s, ctx: _relationships(s) == 1,
    ),
    # an export reads, but data leaves: analyst and up (SPEC §4), one `export` audit event
    Route(
        "GET /assets/export", "GET", "/assets/export?format=csv&tag=legacy", Role.analyst,
        _live_asset, lambda ctx: {},
        lambda s, ctx, r: (
            r.status_code == 200 and "orders-db" in r.get_data(as_text=True)
            and SECRET not in r.get_data(as_text=True) and _last_event(s).action == AuditAction.export
        ),
        _always,  # a refused export is checked by the audit count and the missing rows
    ),
    # bulk actions (SPEC §5): the form and its preview, applying and undoing a change set
    Route(
        "GET /change-sets/new", "GET", "/change-sets/new?ids={asset}", Role.analyst, _live_asset,
        lambda ctx: {}, _page_shows("Bulk change", "Preview change"), _always,
    ),
    Route(
        "POST /change-sets/new", "POST", "/change-sets/new", Role.analyst, _live_asset,
        lambda ctx: {"scope": "ids", "ids": str(ctx["asset"]), "action": "set:owner", "owner": BULK_OWNER},
        lambda s, ctx, r: r.status_code == 303 and _change_sets(s) == 1,
        lambda s, ctx: _change_sets(s) == 0,
    ),
    Route(
        "POST /change-sets/<id>/apply", "POST", "/change-sets/{change_set}/apply", Role.analyst,
        _bulk_preview, lambda ctx: {},
        lambda s, ctx, r: r.status_code == 303 and _asset(s, ctx).owner == BULK_OWNER,
        lambda s, ctx: _asset(s, ctx).owner != BULK_OWNER,
    ),
    Route(
        "POST /change-sets/<id>/undo", "POST", "/change-sets/{change_set}/undo", Role.analyst,
        _bulk_applied, lambda ctx: {},
        lambda s, ctx, r: r.status_code == 303 and _asset(s, ctx).owner != BULK_OWNER,
        lambda s, ctx: _asset(s, ctx).owner == BULK_OWNER,
    ),
    Route(
        "GET /change-sets/<id>", "GET", "/change-sets/{change_set}", Role.viewer, _bulk_applied,
        lambda ctx: {}, _page_shows("Change set #1", "Set owner to"), _always,
    ),
    Route(
        "GET /change-sets", "GET", "/change-sets", Role.viewer, _bulk_applied, lambda ctx: {},
        _page_shows("Bulk changes", "Change set #1"), _always,
    ),
    Route(
        "GET /admin/users", "GET", "/admin/users", Role.admin, _nothing, lambda ctx: {},
        _page_shows("Add a user", "Create user"), _always,
    ),
    Route(
        "POST /admin/users", "POST", "/admin/users", Role.admin, _nothing,
        lambda ctx: {"email": "fresh@example.com", "password": PASSWORD, "role": "admin"},
        lambda s, ctx, r: r.status_code == 303 and s.scalar(
            select(User).where(User.email == "fresh@example.com")) is not None,
        lambda s, ctx: s.scalar(select(User).where(User.email == "fresh@example.com")) is None,
    ),
    Route(
        "POST /admin/users/<id>", "POST", "/admin/users/{user}", Role.admin, _target_user,
        lambda ctx: {"role": "admin", "active": "y"},
        lambda s, ctx, r: r.status_code == 303 and _user_role(s, ctx) == "admin",
        lambda s, ctx: _user_role(s, ctx) == "viewer",
    ),
    Route(
        "GET /admin/settings", "GET", "/admin/settings", Role.admin, _nothing, lambda ctx: {},
        _page_shows("Save settings"), _always,
    ),
    Route(
        "POST /admin/settings", "POST", "/admin/settings", Role.admin, _nothing,
        lambda ctx: {"stale_after_days": "45", "trash_retention_days": "30",
                     "auto_merge_threshold": "0.90", "review_threshold": "0.60",
                     "source_precedence": "manual\naws\nnmap"},
        lambda s, ctx, r: r.status_code == 303 and _setting(s, "stale_after_days") == 45,
        lambda s, ctx: _setting(s, "stale_after_days") is None,
    ),
]


# --- the routes of the analyst's issue (13) added by hand: tags, links by name, apply, users ----

def _finished_dry_run(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    _thread_runner(session, make_user)
    run = imports.create_run(session, SYSTEM, data=INVENTORY, filename="inventory.json", dry_run=True)
    imports.execute(session, run.id)
    return {"run": run.id}


def _named_pair(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {"a": make_asset(session, name="matrix-a").id, "b": make_asset(session, name="matrix-b").id}


def _links(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(AssetRelationship))


def _tagged_asset(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {"asset": make_asset(session, name="tagged", tags=["pci"]).id}


def _tag_colour(session) -> str:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(Tag.colour).where(Tag.name == "pci"))


def _user_email(session, ctx) -> str:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(User, ctx["user"]).email


def _must_change(session, ctx) -> bool:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(User, ctx["user"]).must_change_password


def _scanned_in_trash(session) -> bool:  # type: ignore[no-untyped-def]
    session.expire_all()
    asset = _asset_named(session, "scanned-db")
    return asset is not None and asset.deleted_at is not None


ISSUE_13_ROUTES = [
    Route(
        "POST /imports/<id>/undo", "POST", "/imports/{run}/undo", Role.analyst, _finished_run,
        lambda ctx: {},
        lambda s, ctx, r: (r.status_code == 303 and "/change-sets/" in r.headers["Location"]
                           and _scanned_in_trash(s)),
        lambda s, ctx: not _scanned_in_trash(s),
    ),
    Route(
        "POST /admin/users/<id>/edit", "POST", "/admin/users/{user}/edit", Role.admin, _target_user,
        lambda ctx: {"name": "Renamed", "email": "renamed@example.com", "role": "viewer", "active": "y"},
        lambda s, ctx, r: r.status_code == 303 and _user_email(s, ctx) == "renamed@example.com",
        lambda s, ctx: _user_email(s, ctx) == "target@example.com",
    ),
    Route(
        "POST /admin/users/<id>/password", "POST", "/admin/users/{user}/password", Role.admin,
        _target_user, lambda ctx: {"password": "a temporary password"},
        lambda s, ctx, r: r.status_code == 303 and _must_change(s, ctx),
        lambda s, ctx: not _must_change(s, ctx),
    ),
    Route(
        "POST /imports/<id>/apply", "POST", "/imports/{run}/apply", Role.analyst, _finished_dry_run,
        lambda ctx: {},
        lambda s, ctx, r: r.status_code == 303 and _runs(s) == 2,
        lambda s, ctx: _runs(s) == 1,
    ),
    Route(
        "POST /relationships", "POST", "/relationships", Role.analyst, _named_pair,
        lambda ctx: {"source": "matrix-a", "kind": "depends_on", "target": "matrix-b"},
        lambda s, ctx, r: r.status_code == 303 and _links(s) == 1,
        lambda s, ctx: _links(s) == 0,
    ),
    Route(
        "POST /tags/<name>/colour", "POST", "/tags/pci/colour", Role.analyst, _tagged_asset,
        lambda ctx: {"colour": "red"},
        lambda s, ctx, r: r.status_code == 303 and _tag_colour(s) == "#dc2626",
        lambda s, ctx: _tag_colour(s) != "#dc2626",
    ),
    # a person's own rows per page and columns: every signed-in role (only their own)
    Route(
        "POST /assets/display", "POST", "/assets/display", Role.viewer, lambda s, mu: {},
        lambda ctx: {"page_size": "25", "columns": ["owner"]},  # type: ignore[dict-item]
        lambda s, ctx, r: r.status_code == 303 and _last_event(s).entity_type == "user",
        _always,
    ),
]
ROUTES += ISSUE_13_ROUTES


def _failing_asset(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    asset = make_asset(session, name="plain-db", encrypted_at_rest=False)
    return {"asset": asset.id}


def _exceptions(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(PolicyException))


def _policy_setting(session) -> object:  # type: ignore[no-untyped-def]
    session.expire_all()
    row = session.get(Setting, "policy_parameters")
    return row.value if row is not None else None


ROUTES.append(Route(
    "POST /admin/settings/policy", "POST", "/admin/settings/policy", Role.admin, lambda s, mu: {},
    lambda ctx: {"backup.retention:min_days_low": "2"},
    lambda s, ctx, r: r.status_code == 303 and _policy_setting(s) == {"backup.retention": {"min_days_low": 2}},
    lambda s, ctx: _policy_setting(s) is None,
))
# policy (SPEC §12): exceptions are granted by reviewers and admins
ROUTES.append(Route(
    "POST /assets/<id>/policy/exceptions", "POST", "/assets/{asset}/policy/exceptions", Role.reviewer,
    _failing_asset,
    lambda ctx: {"control": "encryption.at_rest", "reason": "accepted until the migration",
                 "expires_on": (utcnow() + timedelta(days=30)).date().isoformat()},
    lambda s, ctx, r: r.status_code == 303 and _exceptions(s) == 1,
    lambda s, ctx: _exceptions(s) == 0,
))



# scheduled tasks (SPEC §13): admins change schedules (audited) and run a task now
def _task_schedules(session) -> object:  # type: ignore[no-untyped-def]
    session.expire_all()
    row = session.get(Setting, "task_schedules")
    return row.value if row is not None else None


def _task_runs(session) -> int:  # type: ignore[no-untyped-def]
    jobs.wait_for_threads()
    session.expire_all()
    return session.scalar(select(func.count()).select_from(TaskRun))


ROUTES.append(Route(
    "POST /admin/tasks/schedules", "POST", "/admin/tasks/schedules", Role.admin, _nothing,
    lambda ctx: {"schedule-stale_scan": "0 * * * *"},
    lambda s, ctx, r: r.status_code == 303 and _task_schedules(s) == {"stale_scan": "0 * * * *"},
    lambda s, ctx: _task_schedules(s) is None,
))
ROUTES.append(Route(
    "POST /admin/tasks/<name>/run", "POST", "/admin/tasks/stale_scan/run", Role.admin,
    _thread_runner, lambda ctx: {},
    lambda s, ctx, r: r.status_code == 303 and _task_runs(s) == 1,
    lambda s, ctx: _task_runs(s) == 0,
))


# webhooks (SPEC §13): admins only
def _webhook(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    current_app.config["WEBHOOK_SEND_ON_COMMIT"] = False  # nothing leaves the test
    webhook, _secret = webhook_service.create(session, SYSTEM, name="matrix hook",
                                              url="https://93.184.215.14/hook", kinds=["lockout"])
    return {"webhook": webhook.id, "secret_encrypted": webhook.secret_encrypted}


def _finished_delivery(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    ctx = _webhook(session, make_user)
    delivery = webhook_service.send_test(session, SYSTEM, ctx["webhook"])
    session.execute(update(WebhookDelivery).values(status=DeliveryStatus.failed, finished_at=utcnow()))
    session.commit()
    return {**ctx, "delivery": delivery.id}


def _hooks(session) -> list[Webhook]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(Webhook)))


def _deliveries(session) -> list[WebhookDelivery]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(WebhookDelivery)))


def _no_webhook(session, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    current_app.config["WEBHOOK_SEND_ON_COMMIT"] = False
    return {}


HOOK_FORM = {"name": "renamed hook", "url": "https://93.184.215.14/other", "kinds": "lockout",
             "active": "y"}
ROUTES += [
    Route("POST /admin/webhooks/new", "POST", "/admin/webhooks/new", Role.admin, _no_webhook,
          lambda ctx: HOOK_FORM, lambda s, ctx, r: r.status_code == 201 and len(_hooks(s)) == 1,
          lambda s, ctx: _hooks(s) == []),
    Route("POST /admin/webhooks/<id>", "POST", "/admin/webhooks/{webhook}", Role.admin, _webhook,
          lambda ctx: HOOK_FORM,
          lambda s, ctx, r: r.status_code == 303 and _hooks(s)[0].name == "renamed hook",
          lambda s, ctx: _hooks(s)[0].name == "matrix hook"),
    Route("POST /admin/webhooks/<id>/secret", "POST", "/admin/webhooks/{webhook}/secret", Role.admin,
          _webhook, lambda ctx: {},
          lambda s, ctx, r: r.status_code == 200 and _hooks(s)[0].secret_encrypted != ctx["secret_encrypted"],
          lambda s, ctx: _hooks(s)[0].secret_encrypted == ctx["secret_encrypted"]),
    Route("POST /admin/webhooks/<id>/delete", "POST", "/admin/webhooks/{webhook}/delete", Role.admin,
          _webhook, lambda ctx: {}, lambda s, ctx, r: r.status_code == 303 and _hooks(s) == [],
          lambda s, ctx: len(_hooks(s)) == 1),
    Route("POST /admin/webhooks/<id>/test", "POST", "/admin/webhooks/{webhook}/test", Role.admin,
          _webhook, lambda ctx: {}, lambda s, ctx, r: r.status_code == 303 and len(_deliveries(s)) == 1,
          lambda s, ctx: _deliveries(s) == []),
    Route("POST /admin/webhooks/deliveries/<id>/redeliver", "POST",
          "/admin/webhooks/deliveries/{delivery}/redeliver", Role.admin, _finished_delivery, lambda ctx: {},
          lambda s, ctx, r: r.status_code == 303 and _deliveries(s)[0].status is DeliveryStatus.pending,
          lambda s, ctx: _deliveries(s)[0].status is DeliveryStatus.failed),
]


def _allowed(role: str, route: Route) -> bool:
    return role != "anonymous" and Role(role).at_least(route.needs)


def _outcome(role: str, route: Route) -> str:
    if role == "anonymous":
        return "login"
    return "ok" if _allowed(role, route) else "403"


CASES = [
    pytest.param(role, route, id=f"{role}-{_outcome(role, route)}-{route.label}")
    for route in ROUTES
    for role in ROLES
]


def _audit_count(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(AuditEvent))


@pytest.mark.parametrize("role,route", CASES)
def test_role_matrix(client, session, make_user, login_as, role, route):
    make_user("admin", email=f"someone-{uuid.uuid4().hex[:6]}@example.com")  # setup is done
    ctx = route.prepare(session, make_user)
    if role != "anonymous":
        login_as(role)
    before = _audit_count(session)

    response = client.open(route.path.format(**ctx), method=route.method, data=route.data(ctx))
    body = response.get_data(as_text=True)

    if role == "anonymous":
        assert response.status_code == 302, body
        assert urlsplit(response.headers["Location"]).path == "/login"
    elif _allowed(role, route):
        assert response.status_code < 400, body
        assert route.succeeded(session, ctx, response), (response.status_code, body)
        return
    else:
        assert response.status_code == 403, body
        assert in_app_layout(response.data)
        assert f"needs the {route.needs.value} role" in body
    # refused: nothing was written and nothing changed
    assert _audit_count(session) == before
    assert route.unchanged(session, ctx)
    assert SECRET not in body


def test_matrix_covers_every_mutating_route(app):
    """A new POST route must be added to the matrix (or this list) deliberately."""
    covered = {(r.method, r.path.replace("{asset}", "<asset_id>").replace("{user}", "<user_id>")
                .replace("{run}", "<run_id>").replace("{conflict}", "<conflict_id>")
                .replace("{relationship}", "<relationship_id>")
                .replace("{change_set}", "<change_set_id>")
                .replace("/legacy/", "/<tag>/").replace("/tags/pci/", "/tags/<name>/")
                .replace("/tasks/stale_scan/", "/tasks/<name>/")) for r in ROUTES}
    covered |= {(m, p.replace("{webhook}", "<webhook_id>").replace("{delivery}", "<delivery_id>"))
                for m, p in covered}
    # mutating routes that every signed-in role may use (on their own account), tested elsewhere
    everyone = {"/logout", "/login", "/setup", "/account", "/audit/verify", "/account/tokens",
                "/account/tokens/<token_id>/revoke",
                # one's own notifications (tests/web/test_notifications_pages.py)
                "/notifications/read-all", "/notifications/<notification_id>/read", "/account/notifications",
                # four-eyes approval: roles, self-approval and settings in tests/web/test_proposals.py
                "/conflicts/proposals/<proposal_id>/<decision>", "/admin/settings/approval"}
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith("/api/"):
            continue
        for method in sorted((rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}):
            if rule.rule not in everyone and (method, rule.rule) not in covered:
                missing.append(f"{method} {rule.rule}")
    assert missing == []
