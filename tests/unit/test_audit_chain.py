"""The hash chain: every change is recorded, verify finds tampering, PostgreSQL refuses it."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.factories import make_asset
from webapp.models import AuditEvent
from webapp.services import assets, audit
from webapp.services.actor import Actor


def test_chain_links_every_event(session):
    a = make_asset(session)
    assets.update(session, Actor.system(), a.id, {"owner": "x@example.com"}, expected_version=a.version)
    assets.delete(session, Actor.system(), a.id)
    events = session.query(AuditEvent).order_by(AuditEvent.id).all()
    assert [e.action.value for e in events] == ["create", "update", "delete"]
    assert events[0].prev_hash == audit.GENESIS_HASH
    for prev, nxt in zip(events, events[1:], strict=False):
        assert nxt.prev_hash == prev.hash
    result = audit.verify(session)
    assert result.ok and result.checked == 3


def test_secrets_are_masked_in_diffs(session):
    a = make_asset(session, connection_string="postgresql://app:hunter2@db/x")
    event = session.query(AuditEvent).filter_by(entity_id=str(a.id)).one()
    assert event.changes["connection_string"] == [None, "***"]
    assert "hunter2" not in str(event.changes)


def test_verify_names_the_modified_event_on_sqlite(sqlite_app):
    # SQLite has no trigger, so the row can be modified; verify must catch it
    session = sqlite_app.extensions["sqlalchemy"].session
    runner = sqlite_app.test_cli_runner()
    a = make_asset(session)
    assets.update(session, Actor.system(), a.id, {"owner": "y@example.com"}, expected_version=1)
    second = session.query(AuditEvent).order_by(AuditEvent.id).all()[1]
    session.execute(text("UPDATE audit_events SET message = 'edited' WHERE id = :id"), {"id": second.id})
    session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"BROKEN at event {second.id}" in result.output


def test_postgresql_refuses_update_and_delete(session, require_postgres):
    make_asset(session)
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("UPDATE audit_events SET message = 'x'"))
    session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("DELETE FROM audit_events"))
    session.rollback()
    assert audit.verify(session).ok


def test_verify_cli_prints_ok(session, runner):
    make_asset(session)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0
    assert result.output.startswith("OK")
