"""`seen=unverified|stale|fresh` (SPEC §6) in bulk-by-filter and the OpenAPI document; the
list filter itself is in test_assets_api.FILTERS."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from tests.api.conftest import assert_problem, field_errors
from tests.factories import make_asset
from webapp.models import Asset
from webapp.models.base import utcnow


def test_bulk_by_filter_takes_seen(client, admin, session):
    stale = make_asset(session, name="seen-stale", owner="old@example.com")
    fresh = make_asset(session, name="seen-fresh", owner="old@example.com")
    make_asset(session, name="seen-never", owner="old@example.com")
    long_ago = utcnow() - timedelta(days=60)
    session.execute(update(Asset).where(Asset.id == stale.id).values(last_seen_at=long_ago, missed_since=long_ago))
    session.execute(update(Asset).where(Asset.id == fresh.id).values(last_seen_at=long_ago))  # never missed
    session.commit()
    response = client.post("/api/v1/assets/bulk", headers=admin.headers, json={
        "filter": {"seen": "stale"}, "set": {"owner": "hunt@example.com"}, "dry_run": True})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["matched"] == 1
    response = client.post("/api/v1/assets/bulk", headers=admin.headers, json={
        "filter": {"seen": "fresh"}, "set": {"owner": "x@example.com"}, "dry_run": True})
    assert response.get_json()["matched"] == 1
    bad = client.post("/api/v1/assets/bulk", headers=admin.headers, json={
        "filter": {"seen": "sometimes"}, "set": {"owner": "x@example.com"}})
    assert "filter.seen" in field_errors(assert_problem(bad, 422))


def test_the_list_refuses_an_unknown_seen_value(client, admin):
    response = client.get("/api/v1/assets?seen=sometimes", headers=admin.headers)
    assert "seen" in field_errors(assert_problem(response, 422))


def test_openapi_documents_seen(client, admin):
    document = client.get("/api/v1/openapi.json", headers=admin.headers).get_json()
    params = {p["name"]: p for p in document["paths"]["/api/v1/assets"]["get"]["parameters"]}
    assert params["seen"]["schema"]["enum"] == ["unverified", "stale", "fresh"]
    assert "scans covering their host and port" in params["seen"]["description"]
    asset = document["components"]["schemas"]["Asset"]["properties"]
    assert asset["seen"]["enum"] == ["unverified", "stale", "fresh"] and "missed_since" in asset
