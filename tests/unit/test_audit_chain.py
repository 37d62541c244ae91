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


def test_big_floats_in_metadata_verify_after_the_database_round_trip(session):
    """jsonb keeps 1e16 as the integer it is: recorded as a float, the event's hash would be of
    `1e+16`, and the event read back (10000000000000000) would look tampered with."""
    big = {"bytes": 1e16, "huge": 2.5e300, "negative": -3e17, "small": 1.5e-7, "plain": 12.5}
    a = make_asset(session, metadata=big)
    assets.update(session, Actor.system(), a.id, {"metadata": {**big, "bytes": 2e16}}, expected_version=a.version)
    session.commit()
    session.expire_all()
    result = audit.verify(session)
    assert result.ok, result.reason
    event = session.query(AuditEvent).filter_by(entity_id=str(a.id), action="update").one()
    assert event.changes["metadata"][1]["bytes"] == 20_000_000_000_000_000
    assert audit.jsonable(1e16) == 10**16 and type(audit.jsonable(1e16)) is int
    assert audit.jsonable(1.5e-7) == 1.5e-7 and audit.jsonable(9_007_199_254_740_992.0) == 9_007_199_254_740_992.0


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


# --- TRUNCATE and the anchor ------------------------------------------------------------------

def _as_superuser_bypassing_triggers(session, sql: str) -> None:  # type: ignore[no-untyped-def]
    """What only a superuser could do to the table: switch the triggers off and change it."""
    session.execute(text("SET LOCAL session_replication_role = replica"))
    session.execute(text(sql))
    session.commit()


def test_postgresql_refuses_truncate(session, require_postgres):
    make_asset(session)
    with pytest.raises(DBAPIError, match="append-only: TRUNCATE refused"):
        session.execute(text("TRUNCATE audit_events"))
    session.rollback()
    assert audit.verify(session).ok


def test_every_append_moves_the_anchor(session):
    a = make_asset(session)
    first = audit.anchor(session)
    newest = session.query(AuditEvent).order_by(AuditEvent.id.desc()).first()
    assert first == audit.Anchor(newest.id, newest.hash)
    assets.update(session, Actor.system(), a.id, {"owner": "z@example.com"}, expected_version=a.version)
    second = audit.anchor(session)
    assert second.id > first.id
    result = audit.verify(session)
    assert result.ok and result.anchor == second


def test_a_truncated_log_is_not_ok(session, runner, require_postgres):
    make_asset(session)
    _as_superuser_bypassing_triggers(session, "TRUNCATE audit_events")
    result = audit.verify(session)
    assert not result.ok and "truncated" in result.reason
    cli = runner.invoke(args=["audit", "verify"])
    assert cli.exit_code == 1 and cli.output.startswith("BROKEN")


def test_removing_the_newest_events_is_reported(session, runner):
    a = make_asset(session)
    for owner in ("b@example.com", "c@example.com"):
        a = assets.update(session, Actor.system(), a.id, {"owner": owner}, expected_version=a.version)
    keep = session.query(AuditEvent).order_by(AuditEvent.id).first()
    if session.get_bind().dialect.name == "postgresql":
        _as_superuser_bypassing_triggers(session, f"DELETE FROM audit_events WHERE id > {keep.id}")
    else:  # SQLite has no trigger
        session.execute(text("DELETE FROM audit_events WHERE id > :id"), {"id": keep.id})
        session.commit()
    result = audit.verify(session)
    assert not result.ok and result.checked == 1
    assert f"the chain ends at event {keep.id}" in result.reason and "removed" in result.reason
    cli = runner.invoke(args=["audit", "verify"])
    assert cli.exit_code == 1 and "newest events were removed" in cli.output


def test_a_removed_anchor_row_is_reported(session):
    make_asset(session)
    session.execute(text("DELETE FROM settings WHERE key = 'audit_anchor'"))
    session.commit()
    result = audit.verify(session)
    assert not result.ok and "no anchor is recorded" in result.reason


def test_an_empty_log_without_anchor_is_ok(session):
    result = audit.verify(session)
    assert result.ok and result.checked == 0


def test_verify_against_an_anchor_kept_elsewhere(session, runner):
    make_asset(session)
    kept = audit.anchor(session)
    make_asset(session)  # the log grows after the copy was taken: still fine
    assert runner.invoke(args=["audit", "verify", "--anchor", str(kept)]).exit_code == 0
    wrong = audit.Anchor(kept.id, "0" * 64)
    result = runner.invoke(args=["audit", "verify", "--anchor", str(wrong)])
    assert result.exit_code == 1 and "does not have the hash of the anchor given" in result.output
    beyond = audit.Anchor(kept.id + 100, kept.hash)
    result = runner.invoke(args=["audit", "verify", "--anchor", str(beyond)])
    assert result.exit_code == 1 and "is not in the log" in result.output
    result = runner.invoke(args=["audit", "verify", "--anchor", "nonsense"])
    assert result.exit_code == 2 and "ID:HASH" in result.output


def test_stats_prints_the_anchor_to_keep(session, runner):
    make_asset(session)
    result = runner.invoke(args=["stats"])
    assert result.exit_code == 0
    assert f"audit anchor: {audit.anchor(session)}" in result.output


def test_json_loads_reads_what_the_standard_module_reads():
    """orjson reads an integer past 64 bits as a float; `json_loads` must not."""
    import json

    from webapp.services.text import json_loads

    for raw in ['{"id": 123456789012345678901234567890}', '[18446744073709551616, -9223372036854775809]',
                 '{"n": 1.5e-7, "s": "ü", "i": 42}', '"12345678901234567890"', '{"big": ' + "9" * 400 + "}"]:
        assert json_loads(raw) == json.loads(raw) and json_loads(raw.encode()) == json.loads(raw)
        assert repr(json_loads(raw)) == repr(json.loads(raw))  # the same types: an int stays an int
