"""The counts the dashboard, `/policy` and every page's navigation show come from a cache
(issue 18; services/cached_counts.py), on both backends: Redis when REDIS_URL is set, else
in-process. Whatever a person changes through the app shows on the next page they open; only
writes made behind the app's back wait for the cache's expiry."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from flask import current_app
from sqlalchemy import create_engine, text

from tests.conftest import REDIS_URL, base_config, need
from tests.factories import ACTOR, make_asset
from tests.review_factories import field_conflict
from tests.web.browser import form_values
from tests.web.pages import parse
from tests.web.test_dashboard import _seen
from webapp.models import Conflict, ConflictKind, ConflictStatus
from webapp.models.base import utcnow
from webapp.services import assets as asset_service
from webapp.services import bulk, cached_counts, conflicts, imports, settings

GOOD = {"encrypted_at_rest": True, "tls_required": True, "publicly_accessible": False,
        "backup_retention_days": 30, "deletion_protection": True, "criticality": "medium",
        "data_classification": "internal"}


@pytest.fixture(params=["redis", "in-process"])
def app_config(request, database_url):  # type: ignore[no-untyped-def]
    config = base_config(database_url)
    if request.param == "redis":
        need("Redis", bool(REDIS_URL), "set REDIS_URL=redis://127.0.0.1:6379/0")
    else:
        config["REDIS_URL"] = None
    return config


def stats(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The dashboard's numbers by their id: {"stat-total": "3", "open-conflicts": "1", …}."""
    page = parse(client.get("/").data)
    return {a.get("id"): a.find("span", class_="num").text
            for a in page.find("div", class_="stats").find_all("a")}


def review_count(client, url: str = "/assets") -> str:  # type: ignore[no-untyped-def]
    badge = parse(client.get(url).data).by_id("review-count")
    return badge.text.split()[0] if badge is not None else ""


def policy_count(client, control: str, status: str) -> str:  # type: ignore[no-untyped-def]
    """/policy's count of `control`'s assets with `status` (the number linked to them)."""
    page = parse(client.get("/policy").data)
    links = [a for a in page.by_id("framework-soc2").find_all("a")
             if f"policy={control}" in (a.get("href") or "") and f"policy_status={status}" in a.get("href")]
    return links[0].text if links else "0"


def behind_the_apps_back(url: str, sql: str) -> None:
    """A write no session of the app sees (a script, psql)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(sql))
    engine.dispose()


def test_the_cache_is_redis_when_configured_else_in_process(app):
    backend = current_app.extensions["cache"][cached_counts.cache]
    expected = "RedisCache" if app.config["REDIS_URL"] else "SimpleCache"
    assert type(backend).__name__ == expected


def test_counts_are_reused_until_a_commit_changes_them(client, session, login_as, database_url):
    make_asset(session, name="orders", environment="production", owner="dba@example.com")
    login_as("viewer")
    assert stats(client)["stat-unowned"] == "0"
    # a write behind the app's back: the dashboard still shows the cached count (it is cached) …
    behind_the_apps_back(database_url, "UPDATE assets SET owner = NULL")
    assert stats(client)["stat-unowned"] == "0"
    # … until the app's next commit that writes assets
    make_asset(session, name="billing", environment="production", owner=None)
    shown = stats(client)
    assert shown["stat-unowned"] == "2" and shown["stat-total"] == "2"


def test_an_edit_in_the_browser_shows_on_the_dashboard_at_once(client, session, login_as):
    asset = make_asset(session, name="ledger", owner=None, environment="production")
    login_as("analyst")
    assert stats(client)["stat-unowned"] == "1"
    url = f"/assets/{asset.id}/edit"
    data = form_values(client.get(url).data, url)
    data["owner"] = "team-b@example.com"
    assert client.post(url, data=data).status_code == 303
    assert stats(client)["stat-unowned"] == "0"
    # to the trash from the asset's page, then purged for good: each shows at once
    assert client.post(f"/assets/{asset.id}/delete", data={"version": "2"}).status_code in (302, 303)
    shown = stats(client)
    assert shown["stat-total"] == "0" and shown["stat-trash"] == "1"


def test_a_new_staleness_setting_shows_at_once(client, session, login_as):
    legacy = make_asset(session, name="legacy")
    _seen(session, legacy, days_ago=60)
    login_as("admin")
    assert stats(client)["stat-stale"] == "1"
    settings.update(session, ACTOR, {"stale_after_days": 90})
    assert stats(client)["stat-stale"] == "0"


def test_policy_counts_follow_an_exception_and_a_fix(client, session, login_as):
    plain = make_asset(session, name="plain-db", **{**GOOD, "encrypted_at_rest": False})
    make_asset(session, name="good-db", **GOOD)
    login_as("reviewer")
    assert policy_count(client, "encryption.at_rest", "fail") == "1"
    assert client.get("/").status_code == 200  # the dashboard reads (and caches) the same counts
    response = client.post(f"/assets/{plain.id}/policy/exceptions", data={
        "control": "encryption.at_rest", "reason": "legacy storage",
        "expires_on": (date.today() + timedelta(days=30)).isoformat()})
    assert response.status_code == 303
    assert policy_count(client, "encryption.at_rest", "fail") == "0"
    assert policy_count(client, "encryption.at_rest", "excepted") == "1"
    other = make_asset(session, name="other-db", **{**GOOD, "encrypted_at_rest": False})
    assert policy_count(client, "encryption.at_rest", "fail") == "1"
    asset_service.update(session, ACTOR, other.id, {"encrypted_at_rest": True},
                         expected_version=other.version)
    assert policy_count(client, "encryption.at_rest", "fail") == "0"


def test_the_review_count_follows_resolutions_and_purges(client, session, login_as):
    first = make_asset(session, name="orders")
    second = make_asset(session, name="billing")
    items = [field_conflict(session, first, {"owner": ["a@example.com", "b@example.com"]}),
             field_conflict(session, second, {"owner": ["c@example.com", "d@example.com"]})]
    login_as("admin")
    assert review_count(client) == "2"
    assert stats(client)["open-conflicts"] == "2"
    response = client.post(f"/conflicts/{items[0].id}/resolve", data={"action": "dismiss"})
    assert response.status_code in (200, 303)
    assert review_count(client) == "1"
    # purging an asset deletes its review items by a foreign key (PostgreSQL; SQLite keeps them
    # as it enforces no foreign key): the count follows
    asset_service.delete(session, ACTOR, second.id)
    asset_service.purge(session, ACTOR, second.id)
    left = conflicts.open_count(session)
    assert left == (0 if session.get_bind().dialect.name == "postgresql" else 1)
    assert review_count(client) == str(left)
    assert stats(client)["open-conflicts"] == str(left)


def test_an_import_updates_the_counts(client, session, login_as):
    login_as("analyst")
    assert stats(client).get("stat-total") == "0"
    data = b'[{"name": "a", "engine": "mysql", "host": "a.example.com", "port": 3306},' \
           b' {"name": "b", "engine": "mysql", "host": "b.example.com", "port": 3306}]'
    imports.execute(session, imports.create_run(session, ACTOR, data=data, filename="scan.json").id)
    assert stats(client)["stat-total"] == "2"  # batched Core writes (COPY on PostgreSQL)


def test_rows_copied_through_the_driver_drop_the_counts(client, session, login_as):
    """What the import pipeline does with the review items it raises (COPY on PostgreSQL)."""
    asset = make_asset(session, name="orders")
    login_as("viewer")
    assert review_count(client) == "0"
    bulk.insert_rows(session, Conflict.__table__, [{
        "id": uuid.uuid4(), "kind": ConflictKind.field_conflict, "incoming": {},
        "candidate_id": asset.id, "confidence": 1.0, "reasons": [], "fields": {"owner": ["a", "b"]},
        "fingerprint": "f", "status": ConflictStatus.open, "created_at": utcnow()}])
    session.commit()
    assert review_count(client) == "1"


def test_a_rolled_back_write_keeps_the_cached_counts(client, session, login_as, database_url):
    make_asset(session, name="orders", environment="production", owner="dba@example.com")
    login_as("viewer")
    assert stats(client)["stat-unowned"] == "0"
    behind_the_apps_back(database_url, "UPDATE assets SET owner = NULL")
    session.execute(text("UPDATE assets SET notes = 'never'"))
    session.rollback()
    assert stats(client)["stat-unowned"] == "0"  # nothing the app committed: still cached
    # a savepoint's commit is not the transaction's: nothing is dropped before it commits
    with session.begin_nested():
        session.execute(text("UPDATE assets SET notes = 'x'"))
    assert stats(client)["stat-unowned"] == "0"
    session.commit()
    assert stats(client)["stat-unowned"] == "1"


def test_counts_cache_seconds_0_computes_every_time(app, client, session, login_as, database_url):
    app.config["COUNTS_CACHE_SECONDS"] = 0
    make_asset(session, name="orders", environment="production", owner="dba@example.com")
    login_as("viewer")
    assert stats(client)["stat-unowned"] == "0"
    behind_the_apps_back(database_url, "UPDATE assets SET owner = NULL")
    assert stats(client)["stat-unowned"] == "1"


def test_a_failing_cache_server_leaves_the_pages_working(app, client, session, login_as, monkeypatch):
    make_asset(session, name="orders")
    login_as("viewer")
    backend = current_app.extensions["cache"][cached_counts.cache]

    def down(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("cache server down")

    for method in ("get_many", "set", "set_many", "add"):
        monkeypatch.setattr(backend, method, down)
    assert stats(client)["stat-total"] == "1"
    make_asset(session, name="billing")  # its commit cannot reach the cache
    assert stats(client)["stat-total"] == "2"
    assert review_count(client) == "0"


def list_count(client, url: str) -> str:  # type: ignore[no-untyped-def]
    """The asset list's "N assets" line."""
    return parse(client.get(url).data).find("p", class_="count").text.split()[0]


def test_the_asset_lists_counts_follow_every_commit(client, session, login_as):
    """Each filter's count is cached (the 50 people on the same list count it once), and a
    commit that writes assets, their tags or policy results shows on the next page."""
    first = make_asset(session, name="orders", tags=["pci"])
    login_as("analyst")
    assert list_count(client, "/assets") == "1"
    assert list_count(client, "/assets?tag=pci") == "1"
    assert list_count(client, "/assets?q=orders") == "1"
    second = make_asset(session, name="orders-replica")
    assert list_count(client, "/assets") == "2"
    assert list_count(client, "/assets?q=orders") == "2"
    assert list_count(client, "/assets?tag=pci") == "1"
    asset_service.update(session, ACTOR, second.id, {"tags": ["pci"]}, expected_version=second.version)
    assert list_count(client, "/assets?tag=pci") == "2"
    asset_service.delete(session, ACTOR, first.id, expected_version=first.version)
    assert list_count(client, "/assets") == "1"
    assert list_count(client, "/assets?tag=pci") == "1"

