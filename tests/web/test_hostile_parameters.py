"""Every GET route of the app and the API, swept with hostile parameters (SPEC §9, §10).

For each route a clean request first records which query parameters the route reads. Then:
- every parameter it reads holding NUL (`%00`) or the bytes of a lone surrogate (`%ED%A0%80`)
  is a 422 naming that parameter (the page's own error, or problem+json on the API);
- every parameter it reads holding 10,000 characters, and each path id replaced by hostile
  text, is answered with something below 500.
A 500 anywhere fails the test with the route and the parameter.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select
from werkzeug.datastructures import ImmutableMultiDict

from tests.factories import make_asset
from tests.review_factories import make_run, possible_duplicate
from webapp.models import Notification
from webapp.services import change_sets, dispatch, outbox, proposals, relationships, webhooks
from webapp.services.actor import Actor
from webapp.web.filters import field_label
from webapp.web.request import CheckedRequest

HOSTILE_TEXT = {"nul": "a%00b", "surrogate": "a%ED%A0%80b"}
LONG = "x" * 10_000
# a page link of 1,000 nested JSON arrays: a decoder recursing into it must not become a 500
NESTED_CURSOR = base64.urlsafe_b64encode(b"[" * 1000 + b"]" * 1000).decode().rstrip("=")
CURSOR_NAMES = {"after", "before", "cursor"}
# every name any list, filter or page reads, for routes that read all their arguments
KNOWN = ["q", "owner", "tag", "engine", "environment", "status", "criticality",
         "data_classification", "stale", "include_deleted", "sort", "limit", "cursor", "after",
         "before", "version", "actor", "action", "entity_type", "entity_id", "since", "until",
         "kind", "origin", "import", "min_confidence", "outcome", "direction", "depth", "find",
         "next", "source", "source_id", "target_id", "asset_id", "import_id", "import_id",
         "ids", "scope"]
SKIP = {"static", "auth.setup"}


class _Recorder:
    names: set[str] = set()
    reads_all = False


class RecordingArgs(ImmutableMultiDict):  # type: ignore[type-arg]
    """Query arguments that remember which names a route asked for."""

    def get(self, key, default=None, type=None):  # type: ignore[no-untyped-def]
        _Recorder.names.add(key)
        return super().get(key, default, type)

    def getlist(self, key, type=None):  # type: ignore[no-untyped-def]
        _Recorder.names.add(key)
        return super().getlist(key, type)

    def __getitem__(self, key):  # type: ignore[no-untyped-def]
        _Recorder.names.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):  # type: ignore[no-untyped-def]
        _Recorder.names.add(key)
        return super().__contains__(key)

    def items(self, multi=False):  # type: ignore[no-untyped-def]
        _Recorder.reads_all = True
        return super().items(multi)

    def to_dict(self, flat=True):  # type: ignore[no-untyped-def]
        _Recorder.reads_all = True
        return super().to_dict(flat)

    def __iter__(self):  # type: ignore[no-untyped-def]
        _Recorder.reads_all = True
        return super().__iter__()


class RecordingRequest(CheckedRequest):
    @property
    def args(self):  # type: ignore[no-untyped-def, override]
        return RecordingArgs(super().args)


@pytest.fixture
def world(app, session, client, login_as, make_token) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    actor = Actor.system("test")
    a = make_asset(session, name="orders-db")
    b = make_asset(session, name="orders-replica")
    rel = relationships.create(session, actor, source_id=a.id, target_id=b.id, kind="depends_on")
    run = make_run(session)
    conflict = possible_duplicate(session, a, {"name": "orders-db", "engine": "postgresql"}, run=run)
    change_set = change_sets.create(session, actor, change_sets.Selection.of_ids([a.id, b.id]),
                                    change_sets.BulkAction.parse({"owner": "bulk@example.com"}))
    webhook, _secret = webhooks.create(session, actor, name="hostile", url="https://93.184.215.14/h",
                                       kinds=["lockout"])
    admin = login_as("admin")
    token = make_token("admin")
    outbox.emit(session, "import_finished", subject="hostile", recipient_id=admin.id, link="/imports")
    session.commit()
    dispatch.dispatch_pending(session)
    notification = session.scalars(select(Notification).where(Notification.user_id == admin.id)).first()
    critical = make_asset(session, name="ledger-db", environment="production", criticality="critical")
    proposal = proposals.submit(session, Actor(user_id=admin.id, label=admin.email), critical.id,
                                {"owner": "x@example.com"}, expected_version=critical.version)
    return {"asset_id": a.id, "conflict_id": conflict.id, "run_id": run.id, "proposal_id": proposal.id,
            "relationship_id": rel.id, "change_set_id": change_set.id, "user_id": admin.id,
            "webhook_id": webhook.id, "notification_id": notification.id,
            "framework_id": "soc2", "headers": token.headers}


def _routes(app) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" in rule.methods and rule.endpoint not in SKIP:
            yield rule


def _path(rule, world: dict[str, Any], override: str | None = None) -> str:  # type: ignore[no-untyped-def]
    def fill(match: re.Match[str]) -> str:
        name = match.group(2)
        return override if override is not None else str(world[name])

    return re.sub(r"<(?:([a-z]+):)?([a-z_]+)>", fill, rule.rule)


def _get(client, url: str, world: dict[str, Any]):  # type: ignore[no-untyped-def]
    headers = world["headers"] if url.startswith("/api/") else {}
    return client.get(url, headers=headers)


def _read_names(app, client, rule, world) -> set[str]:  # type: ignore[no-untyped-def]
    _Recorder.names, _Recorder.reads_all = set(), False
    app.request_class = RecordingRequest
    try:
        response = _get(client, _path(rule, world), world)
    finally:
        app.request_class = CheckedRequest
    assert response.status_code < 500, (rule.rule, response.status_code)
    return set(KNOWN) if _Recorder.reads_all else set(_Recorder.names)


def _named(response, name: str) -> bool:  # type: ignore[no-untyped-def]
    if response.mimetype == "application/problem+json":
        return any(e["field"] == name for e in response.get_json(force=True).get("errors", []))
    return field_label(name) in response.get_data(as_text=True)


@pytest.mark.postgres
def test_no_get_route_answers_500_to_hostile_parameters(app, client, world, require_postgres):
    failures: list[str] = []
    swept = 0
    for rule in _routes(app):
        names = _read_names(app, client, rule, world)
        base = _path(rule, world)
        for name in sorted(names):
            for label, value in HOSTILE_TEXT.items():
                response = _get(client, f"{base}?{name}={value}", world)
                swept += 1
                # `find` answers a fragment under its own field; the rest name the parameter
                named = _named(response, name) or name == "find"
                if response.status_code != 422 or not named:
                    failures.append(f"{rule.rule} {name}={label}: {response.status_code}")
            for label, value in (("10,000 chars", LONG), ("a nested cursor", NESTED_CURSOR)):
                if label == "a nested cursor" and name not in CURSOR_NAMES:
                    continue
                response = _get(client, f"{base}?{name}={value}", world)
                swept += 1
                if response.status_code >= 500:
                    failures.append(f"{rule.rule} {name}={label}: {response.status_code}")
        if rule.arguments:
            for hostile in ("%00", "%ED%A0%80", LONG, "-1", "9" * 30):
                response = _get(client, _path(rule, world, hostile), world)
                swept += 1
                if response.status_code >= 500:
                    failures.append(f"{rule.rule} with id {hostile[:12]!r}: {response.status_code}")
    assert not failures, "\n".join(failures)
    assert swept > 200  # the sweep really ran over the routes


@pytest.mark.parametrize("url", ["/assets?q=%00", "/assets?owner=%00", "/assets?tag=%00",
                                 "/trash?q=%00", "/audit?actor=%00", "/audit?entity_type=%00",
                                 "/audit?entity_id=%00"])
def test_the_reported_nul_filters_are_422(client, login_as, url):
    login_as("admin")
    response = client.get(url)
    assert response.status_code == 422
    assert "Remove the NUL character" in response.get_data(as_text=True)


def test_an_unread_parameter_does_not_matter_and_a_read_one_is_named(client, login_as):
    login_as("viewer")
    assert client.get("/account?junk=%00").status_code == 200  # the page reads no parameters
    response = client.get("/assets?engine=mysql&q=" + quote("ord\udc80ers", errors="surrogatepass"))
    assert response.status_code == 422


def test_nul_in_a_form_field_is_422_and_writes_nothing(client, session, login_as):
    login_as("analyst")
    response = client.post("/assets/new", data={"name": "bad\x00name", "engine": "mysql"})
    assert response.status_code == 422
    assert "Remove the NUL character" in response.get_data(as_text=True)


def test_nul_in_a_header_the_app_reads_is_422(client, login_as, make_token):
    token = make_token("admin")
    response = client.get("/api/v1/assets", headers={**token.headers, "User-Agent": "curl\x00/8"})
    assert response.status_code == 422
    assert response.get_json(force=True)["errors"][0]["field"] == "User-Agent header"
    login_as("viewer")
    assert client.get("/assets", headers={"User-Agent": "x\x00y"}).status_code == 422


def test_nul_anywhere_in_an_api_json_body_names_the_path(client, make_token):
    token = make_token("admin")
    response = client.post("/api/v1/relationships", headers=token.headers,
                           json={"source_id": "x", "target_id": "y", "kind": "depends_on",
                                 "description": "a\x00b"})
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["description"]
