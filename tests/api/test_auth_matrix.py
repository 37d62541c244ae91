"""Every API endpoint against every role and token kind, and every way to not be authenticated.

Reads: any valid token (scheduled tasks, webhooks: an admin's). Writes: analyst or higher (resolving review
items and granting policy exceptions: reviewer or higher; running a task, registering a webhook:
admin)
with a read-write token; anything else is a 403 problem and writes nothing. No token, a malformed, unknown, revoked or expired token, a
deactivated user's token, or a browser session cookie alone: 401 problem + WWW-Authenticate.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from io import BytesIO
from typing import Any

import pytest
from sqlalchemy import func, select, update

from tests.api.conftest import ROLES, assert_problem
from tests.factories import make_asset
from tests.review_factories import make_run, possible_duplicate
from webapp import jobs
from webapp.models import (
    ApiToken,
    Asset,
    AssetRelationship,
    Conflict,
    ImportRun,
    PolicyException,
    Role,
    TaskRun,
    Webhook,
)
from webapp.models.base import utcnow
from webapp.services import assets as asset_service
from webapp.services import auth as auth_service
from webapp.services import change_sets as change_set_service
from webapp.services import imports as import_service
from webapp.services import relationships as relationship_service
from webapp.services import webhooks as webhook_service
from webapp.services.actor import Actor

SYSTEM = Actor.system("test")


@dataclass(frozen=True)
class Endpoint:
    label: str
    method: str
    path: str  # formatted with {live} and {trashed} asset ids, the {run} import id, the {conflict},
    # the {rel} relationship (between the {upstream} and {downstream} assets)
    write: bool
    success: int
    body: Callable[[dict[str, Any]], Any] | None = None
    headers: Callable[[dict[str, Any]], dict[str, str]] | None = None
    form: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # a multipart body
    audited: int = 1  # audit events a successful write adds (an upload adds a run instead)
    role: str = "analyst"  # the least role that may write
    reader: str = "viewer"  # the least role that may read (an export: analyst, SPEC §4)
    read_audited: int = 0  # audit events a successful read adds (an export: one)
    mimetype: str = "application/json"  # of a successful read


SCAN = b'[{"name": "scanned-db", "engine": "mysql", "host": "10.9.9.9", "port": 3306}]'


def _upload(world: dict[str, Any]) -> dict[str, Any]:
    # a dry run: the upload is what is checked here, not what its job writes
    return {"file": (BytesIO(SCAN), "scan.json"), "dry_run": "true"}


ENDPOINTS = [
    Endpoint("list", "GET", "/api/v1/assets", False, 200),
    Endpoint("create", "POST", "/api/v1/assets", True, 201,
             body=lambda w: {"name": "new-db", "engine": "mysql", "port": 3306}),
    Endpoint("read", "GET", "/api/v1/assets/{live}", False, 200),
    Endpoint("patch", "PATCH", "/api/v1/assets/{live}", True, 200,
             body=lambda w: {"owner": "someone-else@example.com"},
             headers=lambda w: {"If-Match": f'"{w["live_version"]}"'}),
    Endpoint("delete", "DELETE", "/api/v1/assets/{live}", True, 204),
    Endpoint("restore", "POST", "/api/v1/assets/{trashed}/restore", True, 200),
    Endpoint("asset-audit", "GET", "/api/v1/assets/{live}/audit", False, 200),
    Endpoint("audit", "GET", "/api/v1/audit", False, 200),
    Endpoint("import-upload", "POST", "/api/v1/imports", True, 202, form=_upload, audited=0),
    Endpoint("bulk-import", "POST", "/api/v1/assets/bulk-import", True, 202, form=_upload,
             audited=0),
    Endpoint("imports", "GET", "/api/v1/imports", False, 200),
    Endpoint("import", "GET", "/api/v1/imports/{run}", False, 200),
    Endpoint("import-records", "GET", "/api/v1/imports/{run}/records", False, 200),
    Endpoint("conflicts", "GET", "/api/v1/conflicts", False, 200),
    Endpoint("conflict", "GET", "/api/v1/conflicts/{conflict}", False, 200),
    Endpoint("conflict-resolve", "POST", "/api/v1/conflicts/{conflict}/resolve", True, 200,
             body=lambda w: {"action": "dismiss"}, role="reviewer"),
    Endpoint("relationships", "GET", "/api/v1/relationships", False, 200),
    # a link or an unlink is audited on both of its assets
    Endpoint("relationship-create", "POST", "/api/v1/relationships", True, 201, audited=2,
             body=lambda w: {"source_id": str(w["upstream"]), "target_id": str(w["downstream"]),
                             "kind": "feeds"}),
    Endpoint("relationship", "GET", "/api/v1/relationships/{rel}", False, 200),
    Endpoint("relationship-delete", "DELETE", "/api/v1/relationships/{rel}", True, 204, audited=2),
    Endpoint("graph", "GET", "/api/v1/assets/{upstream}/graph", False, 200),
    Endpoint("export", "GET", "/api/v1/assets/export?format=json", False, 200, reader="analyst",
             read_audited=1, mimetype="application/x-ndjson"),
    # a bulk action (SPEC §7): one audit event per asset changed; its undo likewise
    Endpoint("bulk", "POST", "/api/v1/assets/bulk", True, 202,
             body=lambda w: {"ids": [str(w["live"])], "set": {"owner": "bulk@example.com"}}),
    Endpoint("change-set", "GET", "/api/v1/change-sets/{change_set}", False, 200),
    Endpoint("change-set-undo", "POST", "/api/v1/change-sets/{change_set}/undo", True, 202),
    # policy (SPEC §12): reading for any token; an exception, a reviewer's read-write token
    Endpoint("policy-controls", "GET", "/api/v1/policy/controls", False, 200),
    Endpoint("asset-policy", "GET", "/api/v1/assets/{live}/policy", False, 200),
    Endpoint("policy-results", "GET", "/api/v1/policy/results", False, 200),
    Endpoint("policy-exception", "POST", "/api/v1/policy/exceptions", True, 201, role="reviewer",
             body=lambda w: {"asset_id": str(w["live"]), "control": "ownership.owner_set",
                             "reason": "Handed over next month.",
                             "expires_at": (utcnow() + timedelta(days=30)).isoformat()}),
    # scheduled tasks (SPEC §13): admin tokens only; Run now starts a task run (not audited: the
    # run records who started it, and what the task changes is audited by the task)
    Endpoint("tasks", "GET", "/api/v1/tasks", False, 200, reader="admin"),
    Endpoint("task-run", "POST", "/api/v1/tasks/stale_scan/run", True, 202, role="admin",
             reader="admin", audited=0),
    # webhooks (SPEC §13): admin tokens only, to read as well
    Endpoint("webhooks", "GET", "/api/v1/webhooks", False, 200, reader="admin"),
    Endpoint("webhook-create", "POST", "/api/v1/webhooks", True, 201, role="admin",
             body=lambda w: {"name": "SIEM", "url": "https://93.184.215.14/hook", "kinds": ["lockout"]}),
    Endpoint("webhook-deliveries", "GET", "/api/v1/webhooks/{webhook}/deliveries", False, 200,
             reader="admin"),
]
IDS = [e.label for e in ENDPOINTS]


@pytest.fixture
def world(app, session) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    live = make_asset(session, name="orders-db", owner="team-a@example.com")
    trashed = make_asset(session, name="old-db")
    asset_service.delete(session, SYSTEM, trashed.id)
    run = import_service.create_run(session, SYSTEM, data=SCAN, filename="scan.json", dry_run=True)
    import_service.execute(session, run.id)
    conflict = possible_duplicate(session, live, {"name": "orders-db", "engine": "postgresql"},
                                  run=make_run(session))
    upstream, downstream = make_asset(session, name="vault-db"), make_asset(session, name="app-db")
    rel = relationship_service.create(session, SYSTEM, source_id=downstream.id,
                                      target_id=upstream.id, kind="backs_up_to")
    # a change set that set the upstream asset's owner: its undo puts the owner back
    change_set = change_set_service.create(session, SYSTEM, change_set_service.Selection.of_ids([upstream.id]),
                                           change_set_service.BulkAction.parse({"owner": "bulk@example.com"}))
    change_set_service.apply(session, SYSTEM, change_set.id)
    change_set_service.execute(session, change_set.id)
    webhook, _secret = webhook_service.create(session, SYSTEM, name="matrix", url="https://93.184.215.14/m",
                                              kinds=["lockout"])
    # uploads run on a thread this fixture waits for (the RQ path: test_imports_api.py)
    app.config["REDIS_URL"] = None
    yield {"live": live.id, "live_version": live.version, "trashed": trashed.id, "run": run.id,
           "conflict": conflict.id, "upstream": upstream.id, "downstream": downstream.id,
           "rel": rel.id, "change_set": change_set.id, "webhook": webhook.id}
    jobs.wait_for_threads()


def _send(client, endpoint: Endpoint, world: dict[str, Any], auth: dict[str, str]):  # type: ignore[no-untyped-def]
    headers = dict(auth)
    if endpoint.headers:
        headers.update(endpoint.headers(world))
    kwargs: dict[str, Any] = {"headers": headers}
    if endpoint.body:
        kwargs["json"] = endpoint.body(world)
    if endpoint.form:
        kwargs["data"] = endpoint.form(world)
        kwargs["content_type"] = "multipart/form-data"
    return client.open(endpoint.path.format(**world), method=endpoint.method, **kwargs)


def _state(session, world) -> tuple[Any, ...]:  # type: ignore[no-untyped-def]
    """What a write could change: the two assets, how many assets, import runs,
    relationships, policy exceptions, task runs and webhooks there are, the review item's status."""
    session.expire_all()
    live = session.get(Asset, world["live"])
    trashed = session.get(Asset, world["trashed"])
    count = session.query(Asset).count()
    runs = session.scalar(select(func.count()).select_from(ImportRun))
    conflict = session.get(Conflict, world["conflict"]).status
    links = session.scalar(select(func.count()).select_from(AssetRelationship))
    upstream = session.get(Asset, world["upstream"])  # what the change set's undo changes
    exceptions = session.scalar(select(func.count()).select_from(PolicyException))
    task_runs = session.scalar(select(func.count()).select_from(TaskRun))
    hooks = session.scalar(select(func.count()).select_from(Webhook))
    return (live.version, live.owner, live.deleted_at, trashed.version, trashed.deleted_at, count,
            runs, conflict, links, upstream.version, upstream.owner, exceptions, task_runs,
            hooks)


@pytest.mark.parametrize("read_only", [False, True], ids=["read-write", "read-only"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_role_and_token_kind(endpoint, role, read_only, client, make_token, world, session,
                             audit_count):
    issued = make_token(role, read_only=read_only)
    events_before, state_before = audit_count(), _state(session, world)
    response = _send(client, endpoint, world, issued.headers)
    allowed = Role(role).at_least(Role(endpoint.reader)) and (
        not endpoint.write or (Role(role).at_least(Role(endpoint.role)) and not read_only))
    if not allowed:
        body = assert_problem(response, 403)
        if endpoint.write:
            assert ("read-only" in body["detail"]) if read_only else (endpoint.role in body["detail"])
        else:
            assert endpoint.reader in body["detail"]
        assert audit_count() == events_before
        assert _state(session, world) == state_before
        return
    assert response.status_code == endpoint.success, response.get_data(as_text=True)
    if endpoint.write:
        assert audit_count() == events_before + endpoint.audited
        assert _state(session, world) != state_before
    else:
        assert response.mimetype == endpoint.mimetype
        assert audit_count() == events_before + endpoint.read_audited
        assert _state(session, world) == state_before


# --- not authenticated ------------------------------------------------------------------------

def _no_token(make_token, session, client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    make_token("admin")  # a valid token exists; it is just not sent
    return {}


def _bearer_nonsense(make_token, session, client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": "Bearer nonsense"}


def _bearer_empty(make_token, session, client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": "Bearer "}


def _basic(make_token, session, client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    issued = make_token("admin")
    pair = base64.b64encode(f"{issued.user.email}:{issued.secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def _secret_without_scheme(make_token, session, client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": make_token("admin").secret}


def _unknown_token(make_token, session, client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    issued = make_token("admin")
    forged = issued.secret[:-4] + ("AAAA" if not issued.secret.endswith("AAAA") else "BBBB")
    return {"Authorization": f"Bearer {forged}"}


def _revoked(make_token, session, client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from webapp.services import tokens as token_service

    issued = make_token("admin")
    token_service.revoke(session, SYSTEM, issued.token.id, by=issued.user)
    return issued.headers


def _expired(make_token, session, client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    issued = make_token("admin", expires_at=utcnow() + timedelta(days=1))
    assert client.get("/api/v1/assets", headers=issued.headers).status_code == 200
    session.execute(update(ApiToken).where(ApiToken.id == issued.token.id)
                    .values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    return issued.headers


def _deactivated_user(make_token, session, client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    issued = make_token("admin")
    make_token("admin")  # the last active admin cannot be deactivated
    assert client.get("/api/v1/assets", headers=issued.headers).status_code == 200
    auth_service.update_user(session, SYSTEM, issued.user.id, active=False)
    return issued.headers


def _session_cookie(make_token, session, client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from tests.conftest import PASSWORD

    issued = make_token("admin")
    response = client.post("/login", data={"email": issued.user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/assets").status_code == 200  # the browser session works on the web UI
    return {}


CREDENTIALS = {
    "no-token": _no_token,
    "bearer-nonsense": _bearer_nonsense,
    "bearer-empty": _bearer_empty,
    "basic": _basic,
    "secret-without-scheme": _secret_without_scheme,
    "unknown-token": _unknown_token,
    "revoked": _revoked,
    "expired": _expired,
    "deactivated-user": _deactivated_user,
    "session-cookie-only": _session_cookie,
}


@pytest.mark.parametrize("credential", list(CREDENTIALS))
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_unauthenticated_requests_get_401(endpoint, credential, client, make_token, world,
                                          session, audit_count):
    auth = CREDENTIALS[credential](make_token, session, client)
    events_before, state_before = audit_count(), _state(session, world)
    response = _send(client, endpoint, world, auth)
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert body["title"] == "Unauthorized"
    sent = auth.get("Authorization", "").partition(" ")[2] or auth.get("Authorization", "")
    if len(sent) > 12:
        assert sent not in response.get_data(as_text=True)  # a secret is never echoed back
    assert audit_count() == events_before
    assert _state(session, world) == state_before


def test_401_detail_does_not_say_which_check_failed(client, make_token, session):
    """Unknown, revoked and expired tokens get the same answer (no oracle for guessing)."""
    details = set()
    for make in (_unknown_token, _revoked, _expired):
        response = client.get("/api/v1/assets", headers=make(make_token, session, client))
        details.add(assert_problem(response, 401)["detail"])
    assert len(details) == 1
