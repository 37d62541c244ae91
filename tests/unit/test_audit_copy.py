"""`audit verify`'s COPY walk writes the app's canonical JSON from COPY text
(webapp/services/audit_copy.py): on every event type and value shape, the fast template's
bytes hash as `audit._dumps`'s do, what it cannot write goes line by line, and a changed
event is still named."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from webapp.models import AuditAction, AuditEvent, ChangeSet
from webapp.services import audit, audit_copy, audit_walk

TEXTS = ["plain", "Zürich – Ünïcode", "数据团队", "Ελληνικά", "עברית", "देवनागरी", "🚀 emoji", "", "null", "\\N",
         "tab\there", "new\nline", "cr\rx", "back\\slash", "a\\tb", "form\ffeed\bbs", "del \x7f", "\u2028 sep",
         'quote "x"', "ctrl \x01 \x1f", "vt\vx"]
CHANGES = [
    {},
    {"owner": [None, "dba-team@example.com"], "port": [5432, 5433], "tags": [["a", "b"], ["b"]]},
    {"name": ["Zürich 数据库 🚀", "tab\there \"quoted\" back\\slash \n newline \x01 \x7f \u2028"]},
    {"metadata": [{"z": 1, "a": {"y": [1, 2.5, None, True, False], "b": "x"}}, {}]},
    {"é": [1, 2], "e": [3, 4], "É": [5, 6], "\U0001f600": [7, 8], "aa": [0, 1], "a": [0, 1]},
    {"count": [-(2**63), 2**63 - 1], "ratio": [0.001, 123456.789, 0.1]},
    {"note": ["\\N", "a\\\\b"], "q": ['"', "'"]},
]
MICROS = [0, 1, 10, 120, 123400, 123456, 999999, 500000]


def _fast_can_write(values: list[str | None]) -> bool:
    """Text the template writes as the app does: no quote, no control character JSON and COPY
    escape differently (COPY's \\t \\n \\r \\b \\f are JSON's)."""
    return not any(c == '"' or (c < " " and c not in "\t\n\r\b\f") for v in values if v for c in v)


def _append(session, rng: random.Random, change_sets: list[uuid.UUID]) -> tuple[AuditEvent, bool]:  # type: ignore[no-untyped-def]
    prev = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)) or audit.GENESIS_HASH
    pick = lambda: rng.choice([*TEXTS, None])  # noqa: E731
    event = AuditEvent(
        occurred_at=datetime(2026, 12, 7, 22, 53, 56, rng.choice(MICROS), tzinfo=UTC),
        actor_id=None, actor_label=rng.choice(TEXTS), ip=pick(), user_agent=pick(), request_id=pick(),
        action=rng.choice(list(AuditAction)), entity_type=rng.choice(TEXTS), entity_id=pick(),
        changes=rng.choice(CHANGES), message=pick(), prev_hash=prev,
        change_set_id=rng.choice([None, *change_sets]))
    event.hash = audit.compute_hash(event)
    session.add(event)
    session.flush()
    fast = _fast_can_write([event.actor_label, event.ip, event.user_agent, event.request_id, event.entity_type,
                            event.entity_id, event.message])
    return event, fast


def _copy_lines(session) -> list[bytes]:  # type: ignore[no-untyped-def]
    raw = session.connection().connection.driver_connection
    raw.execute("SET LOCAL TIME ZONE 'UTC'")
    raw.execute("SET LOCAL DateStyle TO 'ISO'")
    with raw.cursor() as cursor, cursor.copy(audit_copy.statement(None, None, None)) as copy:
        return [line + b"\n" for line in b"".join(copy).split(b"\n")[:-1]]


def test_the_template_writes_the_app_encoders_bytes(session, require_postgres):
    rng = random.Random(7)
    change_sets = []
    for _ in range(2):
        change_set = ChangeSet(actor_label="test")
        session.add(change_set)
        session.flush()
        change_sets.append(change_set.id)
    events = [_append(session, rng, change_sets) for _ in range(400)]
    assert sum(fast for _, fast in events) > 100 and sum(not fast for _, fast in events) > 100
    lines = _copy_lines(session)
    assert len(lines) == len(events)
    for line, (event, fast) in zip(lines, events, strict=True):
        # a Run from `fast` means the template's bytes hashed to the hash `_dumps`'s bytes have
        if fast:
            run = audit_copy.fast(line, None, ())
            assert run is not None and run.last_id == event.id, (event.id, line)
        slow = audit_copy.slow(line, None, (), "utf-8")
        assert slow.count == 1 and not slow.suspects, (event.id, line)
    # a whole batch: fast refuses it (quotes in some values), slow takes every event
    chunk = b"".join(lines)
    assert audit_copy.fast(chunk, None, ()) is None
    run = audit_copy.slow(chunk, None, (), "utf-8")
    assert run.count == len(events) and not run.suspects and run.broken is None
    audit._move_anchor(session, events[-1][0].id, events[-1][0].hash)
    session.commit()
    result = audit.verify(session)
    assert result.ok and result.checked == len(events)


@pytest.mark.parametrize("micro", MICROS)
def test_timestamps_print_as_isoformat(micro):
    stamp = datetime(2026, 12, 7, 22, 53, 56, micro, tzinfo=UTC)
    pg = stamp.strftime("%Y-%m-%d %H:%M:%S") + (f".{micro:06d}".rstrip("0") if micro else "") + "+00"
    assert audit_copy.iso(pg.encode()) == stamp.isoformat().encode()


def test_copy_escapes_are_undone():
    assert audit_copy.unescape(b"a\\\\b\\tc\\nd\\re\\bf\\fg\\vh\\101\\x41\\q") == b"a\\b\tc\nd\re\bf\fg\vhAAq"
    assert audit_copy.text(b"\\N", "utf-8") is None and audit_copy.text(b"\\\\N", "utf-8") == "\\N"


def test_a_changed_event_with_text_the_template_cannot_write_is_named(session, require_postgres):
    rng = random.Random(3)
    events = [_append(session, rng, [])[0] for _ in range(30)]
    audit._move_anchor(session, events[-1].id, events[-1].hash)
    session.commit()
    assert audit.verify(session).ok
    for column, value in [("message", "'edited \"quoted\"'"), ("actor_label", "'plain'"),
                          ("changes", "'{\"a\": \"\\\\\\\\\"}'::jsonb"), ("occurred_at", "occurred_at + interval '1 us'")]:
        target = events[rng.randrange(5, 25)]
        session.execute(text("SET LOCAL session_replication_role = replica"))
        session.execute(text(f"UPDATE audit_events SET {column} = {value} WHERE id = {target.id}"))
        session.commit()
        result = audit.verify(session)
        assert not result.ok and result.first_broken_id == target.id, column
        assert result.checked == events.index(target)
        session.execute(text("SET LOCAL session_replication_role = replica"))
        session.execute(text(f"DELETE FROM audit_events WHERE id >= {target.id}"))
        session.commit()
        events = events[:events.index(target)]
        for _ in range(30 - len(events)):
            events.append(_append(session, rng, [])[0])
        audit._move_anchor(session, events[-1].id, events[-1].hash)
        session.commit()
        assert audit.verify(session).ok


def test_batches_link_across_copy_statements(session, monkeypatch, require_postgres):
    monkeypatch.setattr(audit_copy, "BATCH", 7)
    monkeypatch.setattr(audit_copy, "CHUNK", 3)
    rng = random.Random(5)
    events = [_append(session, rng, [])[0] for _ in range(40)]
    audit._move_anchor(session, events[-1].id, events[-1].hash)
    session.commit()
    part = audit_walk.walk(session.connection(), audit.hash_payload, watch=(events[20].id,))
    assert part.checked == 40 and part.broken_id is None and part.last_hash == events[-1].hash
    assert part.watched == {events[20].id: events[20].hash}
    session.rollback()
    target = events[22]
    session.execute(text("SET LOCAL session_replication_role = replica"))
    session.execute(text(f"DELETE FROM audit_events WHERE id = {target.id - 1}"))
    session.commit()
    result = audit.verify(session)
    assert not result.ok and result.first_broken_id == target.id and "does not link" in result.reason
