"""`audit verify`'s fast walk: raw rows, orjson checked against the app's encoder, parts on
both cores (webapp/services/audit_walk.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
from sqlalchemy import text

from tests.factories import make_asset
from webapp.models import AuditAction, AuditEvent
from webapp.services import assets, audit, audit_walk
from webapp.services.actor import Actor

# what events carry: text in many scripts and with every escape, nested objects and lists, the
# JSON scalars, uuids and timestamps as text, long values
CHANGES = [
    {},
    {"owner": [None, "dba-team@example.com"], "port": [5432, 5433], "tags": [["a", "b"], ["b"]]},
    {"name": ["Zürich – Ünïcode 数据库 🚀", "tab\there \"quoted\" back\\slash \n newline \x01 \x7f \u2028"]},
    {"metadata": [{"z": 1, "a": {"y": [1, 2.5, None, True, False], "b": "x"}}, {}]},
    {"confidence": [0.9, 0.95], "retention": [7, 35], "last_backup_at": [None, "2026-12-07T10:00:00+00:00"]},
    {"é": [1, 2], "e": [3, 4], "É": [5, 6], "\U0001f600": [7, 8], "aa": [0, 1], "a": [0, 1]},
    {"count": [-(2**63), 2**63 - 1], "ratio": [1e-3, 123456.789], "big": [1e15, 1e16, 2.5e20, 0.1]},
]


def test_orjson_writes_the_app_encoders_bytes_for_every_event_type():
    for action in AuditAction:
        for changes in CHANGES:
            _same_bytes(action, changes)


def _same_bytes(action: AuditAction, changes: dict) -> None:  # type: ignore[type-arg]
    payload = {"occurred_at": datetime(2026, 12, 7, 10, 0, 0, 123456, tzinfo=UTC).isoformat(),
               "actor_id": str(uuid.uuid4()), "actor_label": "import #12", "ip": "2001:db8::1",
               "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "request_id": "r-1", "action": action.value,
               "entity_type": "asset", "entity_id": str(uuid.uuid4()), "changes": changes,
               "message": None, "prev_hash": "0" * 64, "change_set_id": str(uuid.uuid4())}
    assert orjson.dumps(payload, option=orjson.OPT_SORT_KEYS) == audit._dumps(payload).encode()


def test_a_float_orjson_writes_differently_still_verifies(session):
    # `json` writes 1e-07 where orjson writes 1e-7: the app's encoder decides
    assert orjson.dumps(1e-7) != audit._dumps(1e-7).encode()
    a = make_asset(session)
    audit.record(session, Actor.system(), AuditAction.update, "asset", a.id, {"ratio": [1e-7, 2.5e-9]})
    session.commit()
    result = audit.verify(session)
    assert result.ok and result.checked == 2


def _tamper(session, sql: str) -> None:  # type: ignore[no-untyped-def]
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL session_replication_role = replica"))
    session.execute(text(sql))
    session.commit()


def _events(session, n: int) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    a = make_asset(session)
    for i in range(n - 1):
        a = assets.update(session, Actor.system(), a.id, {"owner": f"o{i}@example.com"}, expected_version=a.version)
    return session.query(AuditEvent).order_by(AuditEvent.id).all()


def test_the_walk_in_parts_on_both_cores_finds_what_one_walk_finds(session, monkeypatch, require_postgres):
    monkeypatch.setattr(audit_walk, "PARALLEL_MIN", 1)
    monkeypatch.setattr(audit_walk.os, "cpu_count", lambda: 2)
    events = _events(session, 8)
    session.commit()
    parts = audit_walk.walk_parts(session, audit.hash_payload)
    assert len(parts) == 2 and sum(p.checked for p in parts) == 8
    assert parts[1].first_prev == parts[0].last_hash
    assert audit.verify(session).ok

    # a changed event in the second part is named, with the events before it counted
    target = events[6]
    _tamper(session, f"UPDATE audit_events SET message = 'edited' WHERE id = {target.id}")
    result = audit.verify(session)
    assert not result.ok and result.first_broken_id == target.id and result.checked == 6


def test_a_link_broken_at_the_boundary_of_two_parts_is_named(session, monkeypatch, require_postgres):
    monkeypatch.setattr(audit_walk, "PARALLEL_MIN", 1)
    monkeypatch.setattr(audit_walk.os, "cpu_count", lambda: 2)
    events = _events(session, 8)
    session.commit()
    parts = audit_walk.walk_parts(session, audit.hash_payload)
    first_of_second = parts[1].first_id
    # remove the last event of the first part: the second part no longer links to the first
    _tamper(session, f"DELETE FROM audit_events WHERE id = {first_of_second - 1}")
    result = audit.verify(session)
    assert not result.ok and result.first_broken_id == first_of_second
    assert "does not link" in result.reason and result.checked == first_of_second - 1 - events[0].id


def test_the_walk_reads_sqlite_uuids_and_naive_timestamps(sqlite_app):
    session = sqlite_app.extensions["sqlalchemy"].session
    a = make_asset(session)
    assets.update(session, Actor.system(), a.id, {"owner": "x@example.com"}, expected_version=1)
    session.commit()
    part = audit_walk.walk(session.connection(), audit.hash_payload)
    assert part.broken_id is None and part.checked == 2
