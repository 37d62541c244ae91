"""The policy API (SPEC §7, §12): the controls with their parameters, references and counts; an
asset's results; stored results page by page; exceptions granted by a reviewer or an admin; and
the asset list's (and the export's) policy filters. Every result here was stored by the same
code that keeps `policy_results` current on every change, for assets made through the services.
Its place in the role and token matrix is in test_auth_matrix.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from tests.api.conftest import assert_problem, field_errors
from tests.factories import ACTOR, make_asset
from webapp import policy
from webapp.models import (
    Asset,
    AuditAction,
    AuditEvent,
    PolicyException,
    PolicyResult,
    PolicyStatus,
)
from webapp.models.base import utcnow
from webapp.services import assets as asset_service
from webapp.services import policy_results, settings

GOOD = {"encrypted_at_rest": True, "tls_required": True, "publicly_accessible": False,
        "backup_retention_days": 30, "deletion_protection": True, "criticality": "medium",
        "data_classification": "internal"}


@pytest.fixture
def inventory(session):  # type: ignore[no-untyped-def]
    """good-db passes everything; plain-db fails encryption at rest (and lacks an engine
    version: unknown); bare-db is a staging database with no posture data at all."""
    made = {
        "good": make_asset(session, name="good-db", engine_version="16.4", **GOOD),
        "plain": make_asset(session, name="plain-db", **{**GOOD, "encrypted_at_rest": False}),
        "bare": make_asset(session, name="bare-db", environment="staging"),
    }
    now = utcnow()  # good-db was seen by a discovery import just now: verified and not stale
    session.execute(update(Asset).where(Asset.id == made["good"].id)
                    .values(first_seen_at=now, last_seen_at=now))
    policy_results.touch(session, [made["good"].id])
    session.commit()
    return made


def _stored(session, asset_id, control_id):  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(PolicyResult.status).where(
        PolicyResult.asset_id == asset_id, PolicyResult.control_id == control_id))


def _exceptions(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(PolicyException)) or 0


def _in(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


# --- GET /api/v1/policy/controls --------------------------------------------------------------

def test_controls_with_parameters_references_counts_and_compliance(client, make_token, session,
                                                                   inventory):
    settings.update(session, ACTOR, {"policy_parameters": {"backup.retention": {"min_days_high": 10}}})
    response = client.get("/api/v1/policy/controls", headers=make_token("viewer").headers)
    assert response.status_code == 200
    body = response.get_json()
    controls = {c["id"]: c for c in body["controls"]}
    assert list(controls) == list(policy.CONTROLS)  # registry order, every control

    at_rest = controls["encryption.at_rest"]
    assert at_rest["title"] == policy.CONTROLS["encryption.at_rest"].title
    assert at_rest["description"] and at_rest["family"] == "encryption"
    assert at_rest["severity"] == "high"
    assert at_rest["references"]["soc2"] == ["CC6.1"] and at_rest["references"]["aws_fsbp"] == ["RDS.3"]
    assert at_rest["parameters"] == []
    # good passes, plain fails, bare is not known: compliance = 1 ÷ (1 + 1)
    assert at_rest["counts"] == {"pass": 1, "fail": 1, "unknown": 1, "excepted": 0}
    assert at_rest["compliance"] == 0.5

    # deletion protection applies in production only: bare-db (staging) is not counted
    protection = controls["backup.deletion_protection"]
    assert sum(protection["counts"].values()) == 2
    assert protection["counts"]["pass"] == 2 and protection["compliance"] == 1.0

    retention = {p["name"]: p for p in controls["backup.retention"]["parameters"]}
    assert retention["min_days_high"] == {
        "name": "min_days_high", "type": "integer", "value": 10, "default": 7, "minimum": 1,
        "maximum": 3650, "unit": "days", "allowed": "1–3650 days",
        "help": policy.CONTROLS["backup.retention"].parameter("min_days_high").help,
    }
    assert retention["min_days_low"]["value"] == retention["min_days_low"]["default"] == 1

    frameworks = {f["id"]: f for f in body["frameworks"]}
    assert list(frameworks) == list(policy.FRAMEWORKS)
    soc2 = frameworks["soc2"]
    assert soc2["title"] == "SOC 2" and soc2["description"] and soc2["url"].startswith("https://")
    assert "encryption.at_rest" in soc2["controls"]
    assert soc2["counts"]["fail"] >= 1
    assert frameworks["aws_fsbp"]["controls"] == [c.id for c in policy.controls_for("aws_fsbp")]


def test_controls_with_no_results_have_no_compliance(client, make_token):
    body = client.get("/api/v1/policy/controls", headers=make_token("viewer").headers).get_json()
    for control in body["controls"]:
        assert control["counts"] == {"pass": 0, "fail": 0, "unknown": 0, "excepted": 0}
        assert control["compliance"] is None


# --- GET /api/v1/assets/{id}/policy -----------------------------------------------------------

def test_an_assets_policy_lists_failures_first_and_what_does_not_apply(client, make_token,
                                                                        inventory):
    headers = make_token("viewer").headers
    plain = inventory["plain"]
    response = client.get(f"/api/v1/assets/{plain.id}/policy", headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["asset_id"] == str(plain.id)
    first = body["applicable"][0]
    assert first["control"] == "encryption.at_rest" and first["status"] == "fail"
    assert first["severity"] == "high" and first["title"]
    assert "encrypt" in first["reason"].lower()
    assert first["references"]["gdpr"] == ["Art. 32(1)(a)"]
    assert datetime.fromisoformat(first["evaluated_at"]).tzinfo is not None
    assert first["exception"] is None
    statuses = [row["status"] for row in body["applicable"]]
    assert statuses == sorted(statuses, key=["fail", "unknown", "excepted", "pass"].index)
    assert body["counts"]["fail"] == statuses.count("fail") >= 1
    # backup age is checked for high and critical assets only: this one is medium
    assert "backup.recent" in body["not_applicable"]
    applicable = {row["control"] for row in body["applicable"]}
    assert applicable | set(body["not_applicable"]) == set(policy.CONTROLS)
    assert not applicable & set(body["not_applicable"])

    staging = client.get(f"/api/v1/assets/{inventory['bare'].id}/policy", headers=headers).get_json()
    assert "backup.deletion_protection" in staging["not_applicable"]
    assert {r["control"]: r["status"] for r in staging["applicable"]}["encryption.at_rest"] == "unknown"


def test_an_asset_in_the_trash_has_no_applicable_controls(client, make_token, session, inventory):
    asset_service.delete(session, ACTOR, inventory["plain"].id)
    body = client.get(f"/api/v1/assets/{inventory['plain'].id}/policy",
                      headers=make_token("viewer").headers).get_json()
    assert body["applicable"] == [] and set(body["not_applicable"]) == set(policy.CONTROLS)


@pytest.mark.parametrize("asset_id", ["00000000-0000-4000-8000-000000000000", "not-a-uuid"])
def test_an_unknown_assets_policy_is_404(client, make_token, asset_id):
    response = client.get(f"/api/v1/assets/{asset_id}/policy", headers=make_token("viewer").headers)
    assert_problem(response, 404)


# --- GET /api/v1/policy/results ---------------------------------------------------------------

def _all_pages(client, headers, query: str) -> tuple[list[dict], int]:  # type: ignore[type-arg]
    items, pages, cursor = [], 0, None
    while True:
        url = f"/api/v1/policy/results?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        items.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages


def test_results_page_through_with_the_cursor(client, make_token, session, inventory):
    headers = make_token("viewer").headers
    items, pages = _all_pages(client, headers, "limit=4")
    session.expire_all()
    stored = set(session.execute(select(PolicyResult.asset_id, PolicyResult.control_id)).tuples())
    seen = [(item["asset_id"], item["control"]) for item in items]
    assert len(seen) == len(set(seen)) == len(stored)  # every result once
    assert {(str(a), c) for a, c in stored} == set(seen)
    assert pages == -(-len(stored) // 4)
    # in (asset id, control id) order, across pages
    assert seen == sorted(seen)
    names = {str(a.id): a.name for a in inventory.values()}
    assert all(item["asset_name"] == names[item["asset_id"]] for item in items)
    assert all(item["reason"] and item["evaluated_at"] for item in items)


def test_results_filtered_by_control_and_status(client, make_token, inventory):
    headers = make_token("viewer").headers
    items, _ = _all_pages(client, headers, "control=encryption.at_rest&limit=1")
    assert {(i["asset_name"], i["status"]) for i in items} == {
        ("good-db", "pass"), ("plain-db", "fail"), ("bare-db", "unknown")}
    failing, _ = _all_pages(client, headers, "control=encryption.at_rest&status=fail")
    assert [(i["asset_id"], i["status"]) for i in failing] == [(str(inventory["plain"].id), "fail")]
    unknown, _ = _all_pages(client, headers, "status=unknown")
    assert unknown and {i["status"] for i in unknown} == {"unknown"}
    assert "good-db" not in {i["asset_name"] for i in unknown}
    none = client.get("/api/v1/policy/results?control=backup.deletion_protection&status=excepted",
                      headers=headers).get_json()
    assert none == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(("query", "field"), [
    ("control=no.such.control", "control"),
    ("control=", "control"),
    ("status=failing", "status"),
    ("status=PASS", "status"),
    ("cursor=not-a-cursor", "cursor"),
    ("cursor=WzEsMl0", "cursor"),  # [1, 2]: a cursor of the wrong shape
    ("limit=0", "limit"),
    ("limit=501", "limit"),
    ("limit=ten", "limit"),
])
def test_bad_result_arguments_are_422_naming_them(client, make_token, inventory, query, field):
    response = client.get(f"/api/v1/policy/results?{query}", headers=make_token("viewer").headers)
    assert field in field_errors(assert_problem(response, 422))


# --- POST /api/v1/policy/exceptions -----------------------------------------------------------

@pytest.mark.parametrize("role", ["reviewer", "admin"])
def test_a_reviewer_or_admin_grants_an_exception(client, make_token, session, inventory, role):
    issued = make_token(role)
    plain = inventory["plain"]
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=90)
    response = client.post("/api/v1/policy/exceptions", headers=issued.headers, json={
        "asset_id": str(plain.id), "control": "encryption.at_rest",
        "reason": "Migrating to an encrypted instance in Q3.", "expires_at": until.isoformat()})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["asset_id"] == str(plain.id) and body["control"] == "encryption.at_rest"
    assert body["reason"] == "Migrating to an encrypted instance in Q3."
    assert datetime.fromisoformat(body["expires_at"]) == until
    assert body["granted_by"] == str(issued.user.id)
    assert body["granted_by_label"] == f"{issued.user.email} (token {issued.token.name})"

    # the failure now reads excepted, in the results, the asset's policy and the counts
    assert _stored(session, plain.id, "encryption.at_rest") is PolicyStatus.excepted
    viewer = make_token("viewer").headers
    tab = client.get(f"/api/v1/assets/{plain.id}/policy", headers=viewer).get_json()
    row = next(r for r in tab["applicable"] if r["control"] == "encryption.at_rest")
    assert row["status"] == "excepted"
    assert row["exception"]["reason"] == "Migrating to an encrypted instance in Q3."
    assert row["exception"]["granted_by_label"] == body["granted_by_label"]
    assert datetime.fromisoformat(row["exception"]["expires_at"]) == until
    controls = client.get("/api/v1/policy/controls", headers=viewer).get_json()["controls"]
    counts = next(c for c in controls if c["id"] == "encryption.at_rest")["counts"]
    assert counts == {"pass": 1, "fail": 0, "unknown": 1, "excepted": 1}

    session.expire_all()
    event = session.scalars(select(AuditEvent).where(
        AuditEvent.action == AuditAction.exception_grant)).one()
    assert event.entity_id == str(plain.id) and event.actor_id == issued.user.id


def _grant_body(inventory, **changes):  # type: ignore[no-untyped-def]
    body = {"asset_id": str(inventory["plain"].id), "control": "encryption.at_rest",
            "reason": "Accepted risk until the migration.", "expires_at": _in(30)}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(("changes", "field"), [
    ({"expires_at": "2020-01-01T00:00:00+00:00"}, "expires_at"),  # in the past
    ({"expires_at": "past"}, "expires_at"),
    ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),  # no zone
    ({"reason": ""}, "reason"),
    ({"reason": "   "}, "reason"),
    ({"reason": "x" * 2_001}, "reason"),
    ({"control": "no.such.control"}, "control"),
    ({"control": 7}, "control"),
    ({"asset_id": "nope"}, "asset_id"),
    ({"extra": "field"}, "extra"),
])
def test_bad_exceptions_are_422_naming_the_field(client, make_token, session, inventory,
                                                  audit_count, changes, field):
    headers = make_token("reviewer").headers
    before = audit_count()
    response = client.post("/api/v1/policy/exceptions", headers=headers,
                           json=_grant_body(inventory, **changes))
    assert field in field_errors(assert_problem(response, 422))
    assert _exceptions(session) == 0 and audit_count() == before


@pytest.mark.parametrize("days", [-1 / 24, 367, 3650])
def test_an_expiry_in_the_past_or_over_a_year_is_422(client, make_token, session, inventory, days):
    response = client.post("/api/v1/policy/exceptions", headers=make_token("reviewer").headers,
                           json=_grant_body(inventory, expires_at=_in(days)))
    assert "expires_at" in field_errors(assert_problem(response, 422))
    assert _exceptions(session) == 0


@pytest.mark.parametrize("missing", ["asset_id", "control", "reason", "expires_at"])
def test_each_field_is_required(client, make_token, session, inventory, missing):
    body = {k: v for k, v in _grant_body(inventory).items() if k != missing}
    response = client.post("/api/v1/policy/exceptions", headers=make_token("reviewer").headers,
                           json=body)
    assert missing in field_errors(assert_problem(response, 422))


def test_an_exception_to_a_control_that_does_not_apply_is_422(client, make_token, session,
                                                               inventory):
    # deletion protection is checked in production only; bare-db is a staging database
    response = client.post("/api/v1/policy/exceptions", headers=make_token("reviewer").headers,
                           json=_grant_body(inventory, asset_id=str(inventory["bare"].id),
                                            control="backup.deletion_protection"))
    message = field_errors(assert_problem(response, 422))["control"]
    assert "does not apply" in message
    assert _exceptions(session) == 0


def test_an_exception_for_an_unknown_or_trashed_asset_is_404(client, make_token, session, inventory):
    headers = make_token("reviewer").headers
    unknown = client.post("/api/v1/policy/exceptions", headers=headers, json=_grant_body(
        inventory, asset_id="00000000-0000-4000-8000-000000000000"))
    assert_problem(unknown, 404)
    asset_service.delete(session, ACTOR, inventory["plain"].id)
    trashed = client.post("/api/v1/policy/exceptions", headers=headers, json=_grant_body(inventory))
    assert_problem(trashed, 404)
    assert _exceptions(session) == 0


@pytest.mark.parametrize(("role", "read_only", "says"), [
    ("viewer", False, "reviewer"), ("analyst", False, "reviewer"),
    ("reviewer", True, "read-only"), ("admin", True, "read-only"),
])
def test_who_may_not_grant_gets_403(client, make_token, session, inventory, audit_count, role,
                                    read_only, says):
    headers = make_token(role, read_only=read_only).headers
    before = audit_count()
    response = client.post("/api/v1/policy/exceptions", headers=headers, json=_grant_body(inventory))
    assert says in assert_problem(response, 403)["detail"]
    assert _exceptions(session) == 0 and audit_count() == before
    assert _stored(session, inventory["plain"].id, "encryption.at_rest") is PolicyStatus.fail


def test_reading_needs_a_token(client, inventory):
    for path in ("/api/v1/policy/controls", f"/api/v1/assets/{inventory['plain'].id}/policy",
                 "/api/v1/policy/results"):
        assert_problem(client.get(path), 401)
    assert_problem(client.post("/api/v1/policy/exceptions", json=_grant_body(inventory)), 401)


# --- the asset list's policy filters ----------------------------------------------------------

@pytest.mark.parametrize(("query", "names"), [
    ("policy_failing=true", ["bare-db", "plain-db"]),
    ("policy_failing=false", ["good-db"]),
    ("policy=encryption.at_rest", ["plain-db"]),
    ("policy=encryption.at_rest&policy_status=unknown", ["bare-db"]),
    ("policy=encryption.at_rest&policy_status=pass&policy_status=unknown", ["bare-db", "good-db"]),
    ("policy_status=unknown", ["bare-db", "plain-db"]),  # plain-db: no engine version known
    ("policy_failing=true&environment=production", ["plain-db"]),
])
def test_the_asset_list_filters_by_policy(client, make_token, inventory, query, names):
    response = client.get(f"/api/v1/assets?{query}", headers=make_token("viewer").headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [a["name"] for a in response.get_json()["items"]] == names


def test_an_excepted_failure_leaves_the_failing_list(client, make_token, session, inventory):
    response = client.post("/api/v1/policy/exceptions", headers=make_token("reviewer").headers,
                           json=_grant_body(inventory))
    assert response.status_code == 201
    headers = make_token("viewer").headers
    listed = client.get("/api/v1/assets?policy=encryption.at_rest", headers=headers).get_json()
    assert listed["items"] == []
    excepted = client.get("/api/v1/assets?policy=encryption.at_rest&policy_status=excepted",
                          headers=headers).get_json()
    assert [a["name"] for a in excepted["items"]] == ["plain-db"]


def test_the_export_takes_the_policy_filters(client, make_token, inventory):
    response = client.get(
        "/api/v1/assets/export?format=json&policy=encryption.at_rest&policy_status=fail"
        "&policy_status=unknown", headers=make_token("analyst").headers)
    assert response.status_code == 200
    names = sorted(json.loads(line)["name"] for line in response.get_data(as_text=True).splitlines())
    assert names == ["bare-db", "plain-db"]


@pytest.mark.parametrize(("query", "field"), [
    ("policy=no.such.control", "policy"),
    ("policy_status=failing", "policy_status"),
    ("policy_status=fail&policy_status=nope", "policy_status"),
    ("policy_failing=perhaps", "policy_failing"),
])
@pytest.mark.parametrize("path", ["/api/v1/assets", "/api/v1/assets/export?format=csv"])
def test_bad_policy_filters_are_422_naming_them(client, make_token, inventory, path, query, field):
    url = f"{path}{'&' if '?' in path else '?'}{query}"
    response = client.get(url, headers=make_token("admin").headers)
    assert field in {name.split(".")[0] for name in field_errors(assert_problem(response, 422))}


def test_the_policy_endpoints_are_documented(client, make_token):
    document = client.get("/api/v1/openapi.json", headers=make_token("viewer").headers).get_json()
    paths = document["paths"]
    assert set(paths["/api/v1/policy/controls"]) == {"get"}
    assert "get" in paths["/api/v1/assets/{asset_id}/policy"]
    assert {p["name"] for p in paths["/api/v1/policy/results"]["get"]["parameters"]} >= {
        "control", "status", "limit", "cursor"}
    grant = paths["/api/v1/policy/exceptions"]["post"]
    assert {"201", "403", "404", "422"} <= set(grant["responses"])
    listed = {p["name"] for p in paths["/api/v1/assets"]["get"]["parameters"]}
    assert {"policy_failing", "policy", "policy_status"} <= listed
