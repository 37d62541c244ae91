"""The OpenAPI document: served, valid OpenAPI 3, browsable, and true to the running API.

The schemathesis test generates requests from the document and sends them to the app
through WSGI with an admin read-write token: no server error, every response's status code,
content type and body as documented.
"""

from __future__ import annotations

import itertools
from html.parser import HTMLParser
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate as validate_openapi
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import base_config
from tests.factories import make_asset
from tests.review_factories import duplicate_assets, field_conflict, make_run, possible_duplicate
from webapp import create_app, jobs
from webapp.services import assets as asset_service
from webapp.services import change_sets, relationships
from webapp.services import imports as import_service
from webapp.services.actor import Actor

ENDPOINTS = {
    ("/api/v1/assets", "get"), ("/api/v1/assets", "post"),
    ("/api/v1/assets/{asset_id}", "get"), ("/api/v1/assets/{asset_id}", "patch"),
    ("/api/v1/assets/{asset_id}", "delete"), ("/api/v1/assets/{asset_id}/restore", "post"),
    ("/api/v1/assets/export", "get"),
    ("/api/v1/assets/bulk", "post"), ("/api/v1/change-sets/{change_set_id}", "get"),
    ("/api/v1/change-sets/{change_set_id}/undo", "post"),
    ("/api/v1/assets/{asset_id}/audit", "get"), ("/api/v1/audit", "get"),
    ("/api/v1/imports", "post"), ("/api/v1/assets/bulk-import", "post"),
    ("/api/v1/imports", "get"), ("/api/v1/imports/{run_id}", "get"),
    ("/api/v1/imports/{run_id}/records", "get"),
    ("/api/v1/conflicts", "get"), ("/api/v1/conflicts/{conflict_id}", "get"),
    ("/api/v1/conflicts/{conflict_id}/resolve", "post"),
    ("/api/v1/relationships", "get"), ("/api/v1/relationships", "post"),
    ("/api/v1/relationships/{relationship_id}", "get"),
    ("/api/v1/relationships/{relationship_id}", "delete"),
    ("/api/v1/assets/{asset_id}/graph", "get"),
    ("/api/v1/policy/controls", "get"), ("/api/v1/assets/{asset_id}/policy", "get"),
    ("/api/v1/policy/results", "get"), ("/api/v1/policy/exceptions", "post"),
    ("/api/v1/tasks", "get"), ("/api/v1/tasks/{name}/run", "post"),
    ("/api/v1/webhooks", "get"), ("/api/v1/webhooks", "post"),
    ("/api/v1/webhooks/{webhook_id}/deliveries", "get"),
    ("/healthz", "get"), ("/readyz", "get"),
}
DISCOVERY_FILE = (
    Path(__file__).resolve().parent.parent / "fixtures" / "discovery" / "aws_rds_both.json"
).read_bytes()


def test_openapi_document_is_served_and_valid(client, make_token):
    response = client.get("/api/v1/openapi.json", headers=make_token("viewer").headers)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    validate_openapi(document)  # raises on any violation of the OpenAPI 3 schema
    operations = {(path, method) for path, item in document["paths"].items()
                  for method in item if method != "parameters"}
    assert operations >= ENDPOINTS
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "inv_…",
    }
    # the write-only secret is accepted on input and never described as output
    schemas = document["components"]["schemas"]
    assert "connection_string" in schemas["AssetWrite"]["properties"]
    assert "connection_string" not in schemas["Asset"]["properties"]
    assert "has_connection_string" in schemas["Asset"]["properties"]


def test_openapi_documents_errors_as_problem_json(client, make_token):
    document = client.get("/api/v1/openapi.json", headers=make_token("viewer").headers).get_json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                assert status != "default", f"{method} {path}: undocumented errors hide behind default"
                if path.startswith("/api/") and int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (path, status)


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.refs.append(values[name] or "")
        if tag == "script" and not values.get("src"):
            self.inline_scripts += 1


def test_the_document_and_the_docs_page_need_a_token(client):
    for path in ("/api/v1/openapi.json", "/api/v1/docs"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.mimetype == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_people_signed_in_read_the_docs_at_api_docs(client, login_as, make_user):
    make_user("admin")  # setup is done
    anonymous = client.get("/api-docs")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    login_as("viewer")
    page = client.get("/api-docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert '"openapi": "3.' in page.get_data(as_text=True).replace("&#34;", '"')
    assert 'href="/api-docs"' in client.get("/account/tokens").get_data(as_text=True)


def test_docs_page_renders_from_local_assets_only(client, make_token):
    response = client.get("/api/v1/docs", headers=make_token("viewer").headers)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    parser = _Refs()
    parser.feed(response.get_data(as_text=True))
    assert parser.inline_scripts == 0
    assert parser.refs
    for ref in parser.refs:
        assert ref.startswith("/") and not ref.startswith("//"), f"external reference {ref}"
    assets = [r for r in parser.refs if r.endswith((".js", ".css"))]
    assert any(r.startswith("/static/vendor/") and r.endswith(".js") for r in assets)
    assert any(r.startswith("/static/vendor/") and r.endswith(".css") for r in assets)
    for ref in assets:
        assert ref.startswith("/static/"), ref
        asset_response = client.get(ref)
        try:
            assert asset_response.status_code == 200, ref
        finally:
            asset_response.close()
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


# --- schemathesis ---------------------------------------------------------------------------

@pytest.fixture
def live_api(app, session, admin):  # type: ignore[no-untyped-def]
    """A few real assets (one in the trash) linked in a chain, a finished import, review items
    of each kind, and the admin token the generated calls use. Uploads it accepts run on a thread that ends
    within the test."""
    actor = Actor.system("test")
    assets = [make_asset(session, name=f"fuzz-{i}", tags=["fuzz"]) for i in range(4)]
    trashed = make_asset(session, name="fuzz-trashed")
    asset_service.delete(session, actor, trashed.id)
    run = import_service.create_run(session, actor, data=DISCOVERY_FILE, filename="rds.json")
    import_service.execute(session, run.id)
    flagged = make_run(session)
    incoming = {"name": "fuzz-0", "engine": "postgresql", "host": "fuzz.example.com", "port": 5432,
                "owner": "fuzz@example.com"}
    items = [possible_duplicate(session, assets[i % 2], incoming, run=flagged, record_key=f"csv:{i}")
             for i in range(4)]
    items.append(duplicate_assets(session, assets[2], assets[3]))
    items.append(field_conflict(session, assets[0], {"owner": [None, "fuzz@example.com"]}, run=flagged))
    links = [relationships.create(session, actor, source_id=a.id, target_id=b.id, kind="depends_on")
             for a, b in itertools.pairwise(assets)]
    # a bulk change (applied) whose undo the generated calls may ask for
    bulk = change_sets.create(session, actor, change_sets.Selection.of_ids([assets[0].id]),
                              change_sets.BulkAction.parse({"owner": "fuzz-bulk@example.com"}))
    change_sets.execute(session, change_sets.apply(session, actor, bulk.id).id)
    app.config["REDIS_URL"] = None
    yield {"token": admin.secret, "ids": [str(a.id) for a in [*assets, trashed]],
           "change_set_id": str(bulk.id),
           "run_id": str(run.id), "conflict_ids": [str(c.id) for c in items],
           "relationship_ids": [str(r.id) for r in links],
           "calls": itertools.count()}
    jobs.wait_for_threads()


# The document is loaded once, at collection, from an app that never touches its database
# (building the document needs none). Each generated call is then sent, through WSGI, to the
# test's own `app` with its migrated database. (schemathesis.pytest.from_fixture would load it
# per test, but its lazy runner sets `Node._nodeid`, which pytest 9.2 no longer has.)
def _document() -> dict[str, object]:
    """The document /api/v1/openapi.json serves (it needs a token, so a database: built here
    the way that view builds it)."""
    import json

    from webapp.api import api

    app = create_app(base_config("sqlite://"))
    with app.app_context():
        return json.loads(app.json.dumps(api.spec.to_dict()))


schema = schemathesis.openapi.from_dict(_document())


AUTH_HEADER = "Authorization"


@schema.parametrize()
@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, app, client, live_api):  # type: ignore[no-untyped-def]
    auth = {AUTH_HEADER: f"Bearer {live_api['token']}"}
    ids = live_api["ids"]
    if "asset_id" in (case.path_parameters or {}):
        # most calls address real rows (four live, one trashed), one in six keeps the generated
        # (unknown) id; the PATCHes that address a real row mostly send its current ETag, so
        # generated changes get past optimistic locking
        n = next(live_api["calls"])
        if n % (len(ids) + 1) < len(ids):
            asset_id = ids[n % (len(ids) + 1)]
            case.path_parameters["asset_id"] = asset_id
            if case.method.upper() == "PATCH" and n % 4:
                current = client.get(f"/api/v1/assets/{asset_id}", headers=auth)
                if current.status_code == 200:
                    case.headers = {**(case.headers or {}), "If-Match": current.headers["ETag"]}
    if "change_set_id" in (case.path_parameters or {}) and next(live_api["calls"]) % 4:
        case.path_parameters["change_set_id"] = live_api["change_set_id"]
    # generated ids are never assets: most bulk calls by id name real ones
    if (case.method.upper() == "POST" and case.path == "/api/v1/assets/bulk"
            and isinstance(case.body, dict) and "ids" in case.body and next(live_api["calls"]) % 3):
        case.body = {**case.body, "ids": ids[: 1 + next(live_api["calls"]) % len(ids)]}
    if "run_id" in (case.path_parameters or {}) and next(live_api["calls"]) % 4:
        case.path_parameters["run_id"] = live_api["run_id"]
    if "conflict_id" in (case.path_parameters or {}):
        n = next(live_api["calls"])
        if n % 5:  # mostly real items (open ones get resolved, later calls then get 409)
            case.path_parameters["conflict_id"] = live_api["conflict_ids"][n % len(live_api["conflict_ids"])]
    if "relationship_id" in (case.path_parameters or {}):
        n = next(live_api["calls"])
        if n % 4:  # mostly real links (deleted ones then answer 404)
            rel_ids = live_api["relationship_ids"]
            case.path_parameters["relationship_id"] = rel_ids[n % len(rel_ids)]
    # generated ids are never assets: every other new link joins two real ones (201, or 409
    # once made; 422 when one is the trashed asset or both are the same)
    if (case.method.upper() == "POST" and case.path == "/api/v1/relationships"
            and isinstance(case.body, dict) and next(live_api["calls"]) % 2):
        n = next(live_api["calls"])
        case.body = {**case.body, "source_id": ids[n % len(ids)],
                     "target_id": ids[(n * 7 + 1) % len(ids)]}
    # generated ids are never assets: most exceptions name a real one (201 when the rest of the
    # generated body is valid, else a 422 naming the field)
    if (case.method.upper() == "POST" and case.path == "/api/v1/policy/exceptions"
            and isinstance(case.body, dict) and next(live_api["calls"]) % 3):
        case.body = {**case.body, "asset_id": ids[next(live_api["calls"]) % len(ids)]}
    # generated bytes are never a discovery file: one upload in three sends a real one
    if (case.method.upper() == "POST" and case.path.endswith(("/imports", "/bulk-import"))
            and isinstance(case.body, dict) and "file" in case.body
            and next(live_api["calls"]) % 3 == 0):
        case.body["file"] = DISCOVERY_FILE
    case.call_and_validate(
        app=app,
        headers=auth,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance],
    )
