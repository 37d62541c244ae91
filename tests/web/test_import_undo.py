"""`Undo this import` on the run page (SPEC §5 `/imports/<id>`, §7): offered to analysts on a
finished real run, refused to viewers, it undoes the run's change set and shows the undo's
change set page; the run page then links to it. Also through the API."""

from __future__ import annotations

import json

from sqlalchemy import select

from tests.factories import ACTOR
from tests.web.browser import HTMX
from tests.web.pages import parse
from webapp.models import Asset, AssetRelationship, ChangeSet, ChangeSetKind, ImportRun
from webapp.services import assets as asset_service
from webapp.services import imports
from webapp.services.actor import Actor

CLI = Actor.cli("tester")
BEFORE = json.dumps([{"name": "orders-a", "engine": "mysql", "host": "orders-a.example.com", "port": 3306}])
RDS = json.dumps({"DBInstances": [
    {"DBInstanceIdentifier": "orders-a", "Engine": "mysql", "StorageEncrypted": True,
     "DBInstanceArn": "arn:aws:rds:eu-west-1:123456789012:db:orders-a",
     "ReadReplicaDBInstanceIdentifiers": ["orders-b"],
     "Endpoint": {"Address": "orders-a.example.com", "Port": 3306}},
    {"DBInstanceIdentifier": "orders-b", "Engine": "mysql", "ReadReplicaSourceDBInstanceIdentifier": "orders-a",
     "Endpoint": {"Address": "orders-b.example.com", "Port": 3306}},
]})


def _run(session, data: str, *, dry_run: bool = False) -> ImportRun:  # type: ignore[no-untyped-def]
    run = imports.create_run(session, CLI, data=data.encode(), filename="file.json", dry_run=dry_run)
    return imports.execute(session, run.id)


def _imported(session) -> ImportRun:  # type: ignore[no-untyped-def]
    _run(session, BEFORE)
    run = _run(session, RDS)
    assert (run.created, run.updated, run.linked) == (1, 1, 1)
    return run


def _asset(session, name: str) -> Asset:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalars(select(Asset).where(Asset.name == name)).one()


def _undo_button(html: str):  # type: ignore[no-untyped-def]
    return parse(html).by_id("undo-import")


def test_an_analyst_is_offered_the_undo_on_the_full_page_and_the_progress_block(client, session, login_as):
    run = _imported(session)
    login_as("analyst")
    full = client.get(f"/imports/{run.id}")
    assert full.status_code == 200
    button = _undo_button(full.get_data(as_text=True))
    assert button is not None and "Undo this import" in button.text
    assert f'action="/imports/{run.id}/undo"' in full.get_data(as_text=True)
    partial = client.get(f"/imports/{run.id}", headers={**HTMX, "HX-Target": "progress"})
    html = partial.get_data(as_text=True)
    assert partial.status_code == 200 and "<html" not in html
    assert _undo_button(html) is not None and "change set #" in html


def test_a_viewer_sees_no_undo_and_is_refused(client, session, login_as):
    run = _imported(session)
    login_as("viewer")
    assert _undo_button(client.get(f"/imports/{run.id}").get_data(as_text=True)) is None
    response = client.post(f"/imports/{run.id}/undo")
    assert response.status_code == 403
    assert _asset(session, "orders-b").deleted_at is None


def test_a_dry_run_offers_no_undo_and_refuses_one(client, session, login_as):
    run = _run(session, RDS, dry_run=True)
    login_as("analyst")
    assert _undo_button(client.get(f"/imports/{run.id}").get_data(as_text=True)) is None
    response = client.post(f"/imports/{run.id}/undo")
    assert response.status_code == 409
    assert "undone as a whole" in response.get_data(as_text=True)


def test_undo_shows_the_undo_change_set_and_the_run_page_links_to_it(client, session, login_as):
    run = _imported(session)
    asset_service.update(session, ACTOR, _asset(session, "orders-a").id, {"notes": "edited since"},
                         expected_version=_asset(session, "orders-a").version)
    login_as("analyst")
    response = client.post(f"/imports/{run.id}/undo")
    assert response.status_code == 303
    session.expire_all()
    undo = session.scalars(select(ChangeSet).where(ChangeSet.kind == ChangeSetKind.undo)).one()
    assert response.headers["Location"].endswith(f"/change-sets/{undo.id}")

    page = client.get(response.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f"Undo of import #{run.number}" in html
    # orders-a was edited after the import: refused and listed; orders-b went to the trash
    reported = parse(html).by_id("progress").text
    assert "Left as they were (1)" in reported and "orders-a" in reported and "changed since import" in reported
    assert _asset(session, "orders-b").deleted_at is not None
    assert session.scalars(select(AssetRelationship)).all() == []

    after = client.get(f"/imports/{run.id}").get_data(as_text=True)
    assert _undo_button(after) is None
    link = parse(after).find("a", class_="undone-by")
    assert link is not None and link.get("href") == f"/change-sets/{undo.id}"
    again = client.post(f"/imports/{run.id}/undo")
    assert again.status_code == 409 and "undone already" in again.get_data(as_text=True)


def test_the_api_names_the_change_set_and_undoes_it(client, session, make_token):
    run = _imported(session)
    token = make_token("analyst", name="undo")
    body = client.get(f"/api/v1/imports/{run.id}", headers=token.headers).get_json()
    assert body["change_set_id"] == str(run.change_set_id)
    response = client.post(f"/api/v1/change-sets/{run.change_set_id}/undo", headers=token.headers)
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["status"] == "succeeded" and response.get_json()["changed"] == 3
    assert _asset(session, "orders-b").deleted_at is not None
    dry = _run(session, RDS, dry_run=True)
    assert client.get(f"/api/v1/imports/{dry.id}", headers=token.headers).get_json()["change_set_id"] is None
