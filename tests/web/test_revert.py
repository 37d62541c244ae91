"""History: view the record as of any version, and revert to it as a new audited change."""

from __future__ import annotations

from sqlalchemy import select

from tests.factories import make_asset
from webapp.models import AuditAction, AuditEvent
from webapp.services import assets
from webapp.services.actor import Actor

SYSTEM = Actor.system("test")


def _three_versions(session):  # type: ignore[no-untyped-def]
    a = make_asset(session, name="orders-db", owner="alice@example.com", environment="production",
                   tags=["pci"], connection_string="postgresql://u:one@h/db")
    a = assets.update(session, SYSTEM, a.id, {"owner": "bob@example.com"}, expected_version=1)
    a = assets.update(session, SYSTEM, a.id, {"environment": "staging", "tags": ["legacy"],
                                              "connection_string": "postgresql://u:two@h/db"},
                      expected_version=2)
    return a


def test_history_shows_the_record_as_of_a_version(client, session, login_as):
    a = _three_versions(session)
    login_as("viewer")
    page = client.get(f"/assets/{a.id}/history?version=1").get_data(as_text=True)
    assert "As of version 1" in page
    assert "alice@example.com" in page and "production" in page
    assert "Revert to this version" not in page  # a viewer cannot revert
    assert client.get(f"/assets/{a.id}/history?version=99").status_code == 404


def test_revert_restores_old_values_as_a_new_audited_version(client, session, login_as):
    a = _three_versions(session)
    login_as("analyst")
    page = client.get(f"/assets/{a.id}/history?version=1").get_data(as_text=True)
    assert "Revert to this version" in page
    response = client.post(f"/assets/{a.id}/revert", data={"to_version": "1", "version": "3"})
    assert response.status_code == 303
    session.expire_all()
    a = assets.get(session, a.id)
    assert (a.owner, a.environment.value, [t.name for t in a.tags]) == (
        "alice@example.com", "production", ["pci"])
    assert a.version == 4
    # the secret is not in the history, so it stays as it was
    assert assets.crypto.decrypt(session, a.connection_string_encrypted).endswith(":two@h/db")
    event = session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    assert event.action == AuditAction.revert and event.message == "reverted to version 1"
    assert event.changes["owner"] == ["bob@example.com", "alice@example.com"]
    assert event.changes["version"] == [3, 4]
    assert "reverted to version 1" in client.get(f"/assets/{a.id}/history").get_data(as_text=True)


def test_revert_with_a_stale_version_changes_nothing(client, session, login_as):
    a = _three_versions(session)
    login_as("analyst")
    response = client.post(f"/assets/{a.id}/revert", data={"to_version": "1", "version": "2"})
    assert response.status_code == 409
    session.expire_all()
    assert assets.get(session, a.id).version == 3


def test_revert_to_an_unknown_version_is_404(client, session, login_as):
    a = _three_versions(session)
    login_as("analyst")
    response = client.post(f"/assets/{a.id}/revert", data={"to_version": "42", "version": "3"})
    assert response.status_code == 404
    session.expire_all()
    assert assets.get(session, a.id).version == 3
