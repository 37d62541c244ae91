"""GET /api/v1/assets/export (SPEC §7): the list's filters and sort as one streamed file, for a
token of an analyst or higher (read-only tokens too: an export changes nothing but the audit
log), audited like the page's export. Its place in the role and token matrix is in
test_auth_matrix.py; the formats themselves are tested through the page (tests/web/test_exports.py).
"""

from __future__ import annotations

import codecs
import csv
import io
import json

import pytest
from sqlalchemy import select

from tests.api.conftest import assert_problem, field_errors
from tests.factories import make_asset
from webapp.models import AuditAction, AuditEvent
from webapp.services import exports

SECRET = "mysql://app:s3cret-pw@db.internal/orders"


@pytest.fixture
def inventory(session):  # type: ignore[no-untyped-def]
    made = [make_asset(session, name=f"orders-{i}", engine="mysql" if i % 2 else "postgresql",
                       tags=["pci"] if i % 3 == 0 else [], connection_string=SECRET,
                       owner=f"=team-{i}@example.com")
            for i in range(7)]
    return made


def _events(session) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.export)))


@pytest.mark.parametrize("read_only", [False, True])
def test_an_analyst_token_exports_the_filter_in_the_lists_order(client, make_token, inventory,
                                                                 session, read_only):
    issued = make_token("analyst", read_only=read_only)
    query = "engine=postgresql&sort=-name"
    listed = client.get(f"/api/v1/assets?{query}", headers=issued.headers).get_json()["items"]

    response = client.get(f"/api/v1/assets/export?format=json&{query}", headers=issued.headers)
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "application/x-ndjson"
    assert response.headers["X-Total-Count"] == str(len(listed)) == "4"
    assert response.headers["Content-Disposition"].endswith('.jsonl"')
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert lines == [{c: item[c] for c in exports.COLUMNS} for item in listed]

    response = client.get(f"/api/v1/assets/export?format=csv&{query}", headers=issued.headers)
    assert response.mimetype == "text/csv"
    assert response.data.startswith(codecs.BOM_UTF8)
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"), newline="")))
    assert [r["id"] for r in rows] == [item["id"] for item in listed]
    assert {r["owner"][:2] for r in rows} == {"'="}  # formula-safe
    assert SECRET.encode() not in response.data

    events = _events(session)
    assert len(events) == 2
    assert events[0].actor_label == f"{issued.user.email} (token {issued.token.name})"
    assert events[0].changes["count"] == [None, 4]
    recorded = events[0].changes["filter"][1]
    assert recorded["sort"] == "-name" and recorded["engine"] in ("postgresql", ["postgresql"])
    assert set(recorded) == {"engine", "sort"}


def test_a_viewer_token_is_refused(client, make_token, inventory, session):
    response = client.get("/api/v1/assets/export?format=csv", headers=make_token("viewer").headers)
    body = assert_problem(response, 403)
    assert "analyst" in body["detail"]
    assert _events(session) == []


def test_no_token_is_a_401(client, inventory):
    response = client.get("/api/v1/assets/export?format=csv")
    assert_problem(response, 401)
    assert "orders-0" not in response.get_data(as_text=True)


@pytest.mark.parametrize("query,field", [
    ("", "format"),
    ("format=pdf", "format"),
    ("format=csv&engine=excel", "engine"),
    ("format=csv&sort=connection_string", "sort"),
    ("format=csv&stale=perhaps", "stale"),
    ("format=csv&owner=a%00b", "owner"),
])
def test_a_bad_filter_is_a_422_problem_naming_it(client, make_token, session, query, field):
    response = client.get(f"/api/v1/assets/export?{query}", headers=make_token("admin").headers)
    body = assert_problem(response, 422)
    assert field in {name.split(".")[0] for name in field_errors(body)}  # engine or engine.0
    assert _events(session) == []


def test_the_export_is_documented(client, make_token):
    document = client.get("/api/v1/openapi.json", headers=make_token("viewer").headers).get_json()
    operation = document["paths"]["/api/v1/assets/export"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["format"]["required"] is True
    assert parameters["format"]["schema"]["enum"] == ["csv", "json", "xlsx"]
    assert {"q", "engine", "tag", "sort", "include_deleted"} <= set(parameters)
    assert not {"limit", "cursor"} & set(parameters)
    assert set(operation["responses"]["200"]["content"]) == {
        "text/csv", "application/x-ndjson",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
    assert set(operation["responses"]) == {"200", "401", "403", "422"}
    assert operation["security"] == [{"bearerAuth": []}]
