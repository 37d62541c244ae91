"""`flask dump` / `load` (issue 16): the SQLite → dump → PostgreSQL → dump round trip, and every
case `load` refuses while writing nothing."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Integer, func, insert, select

from tests.conftest import base_config, migrate_to_head
from tests.factories import make_asset
from tests.imports.helpers import inventory, run_file
from tests.review_factories import duplicate_assets
from webapp import create_app
from webapp.extensions import db as _db
from webapp.models import AuditAction, AuditEvent, Base, ChangeSet
from webapp.models.base import utcnow
from webapp.services import (
    audit,
    auth,
    change_sets,
    conflicts,
    dispatch,
    dump,
    outbox,
    tokens,
    webhooks,
)
from webapp.services import demo as demo_service
from webapp.services.actor import Actor
from webapp.services.dump_codec import codec_for

ACTOR = Actor.cli("test")


# --- making an inventory with every table filled ------------------------------------------------

def fill_inventory(session) -> None:  # type: ignore[no-untyped-def]
    """Demo data, then what the test factories and services make, then a generic row in any
    table still empty (tables other people add are covered without naming them)."""
    demo_service.load(session, count=24, seed=3)
    admin = auth.create_user(session, ACTOR, email="ops@example.com", password="correct horse battery", role="admin")
    tokens.create(session, ACTOR, admin, name="backup robot", read_only=True)
    a = make_asset(session, name="orders-db", connection_string="postgresql://u:secret@db/orders",
                   metadata={"zone": "b", "a": [1, 2.5, None], "ü": "é\t\"x\\"}, confidence=0.37)
    b = make_asset(session, name="orders-db-copy")
    conflict = duplicate_assets(session, a, b)
    conflicts.resolve(session, ACTOR, conflict.id, "merge")  # b merged into a (merged_into)
    run_file(session, inventory({"name": "imported-1", "engine": "mysql", "host": "imp1.example.com",
                                 "port": 3306}))
    cs = change_sets.create(session, ACTOR, change_sets.Selection.of_ids([a.id]),
                            change_sets.BulkAction.parse(set_values={"owner": "dba@example.com"}))
    change_sets.apply(session, ACTOR, cs.id)
    change_sets.execute(session, cs.id)
    webhooks.create(session, ACTOR, name="receiver", url="http://127.0.0.1:9/hook", kinds=["import_finished"])
    outbox.emit(session, "import_finished", subject="An import finished", payload={"n": 1})
    session.commit()
    dispatch.dispatch_pending(session)
    fill_empty_tables(session)


def _value(column, parents: dict[str, Any]) -> Any:  # type: ignore[no-untyped-def]
    if column.foreign_keys:
        fk = next(iter(column.foreign_keys))
        return parents.get(f"{fk.column.table.name}.{fk.column.name}")
    kind = codec_for(column).kind
    length = getattr(column.type, "length", None) or 20
    return {
        "text": ("v-" + uuid.uuid4().hex)[:length], "int": 1, "float": 0.25, "bool": True,
        "uuid": uuid.uuid4(), "datetime": utcnow(), "date": date(2026, 1, 2),
        "json": {"generic": [1, "two", None]}, "bytes": b"\x00\xff-generic",
        "enum": list(getattr(column.type, "enums", []))[:1][0] if getattr(column.type, "enums", None) else None,
    }[kind]


def fill_empty_tables(session) -> None:  # type: ignore[no-untyped-def]
    for table in Base.metadata.sorted_tables:
        if session.scalar(select(func.count()).select_from(table)):
            continue
        parents = {}
        for column in table.columns:
            for fk in column.foreign_keys:
                key = f"{fk.column.table.name}.{fk.column.name}"
                parents[key] = session.scalar(select(fk.column).limit(1))
        row = {c.key: _value(c, parents) for c in table.columns
               if c.computed is None and not (c.primary_key and isinstance(c.type, Integer)
                                              and c.autoincrement in (True, "auto") and len(table.primary_key.columns) == 1)}
        session.execute(insert(table), [row])
    session.commit()


# --- reading dumps ------------------------------------------------------------------------------

def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        return f.read().splitlines()


def sections_of(lines: list[str]) -> dict[str, list[str]]:
    """{table: its row lines as written}."""
    found: dict[str, list[str]] = {}
    current = None
    for line in lines[1:]:
        if line.startswith("{"):
            control = json.loads(line)
            current = control.get("table")
            if current:
                found[current] = []
            continue
        found[current].append(line)  # type: ignore[index]
    return found


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def rewrite_rows(lines: list[str], table: str, change: Callable[[list[Any]], None], *, index: int = 0) -> list[str]:
    """The dump with one row of `table` changed and the section's checksum made to match again."""
    out = list(lines)
    start = next(i for i, ln in enumerate(out) if ln.startswith('{"table": "' + table + '"'))
    end = next(i for i in range(start + 1, len(out)) if out[i].startswith('{"end": "' + table + '"'))
    row = json.loads(out[start + 1 + index])
    change(row)
    out[start + 1 + index] = json.dumps(row, ensure_ascii=False, separators=(", ", ": "))
    digest = hashlib.sha256()
    for ln in out[start + 1:end]:
        digest.update((ln + "\n").encode())
    trailer = json.loads(out[end])
    trailer["sha256"] = digest.hexdigest()
    out[end] = json.dumps(trailer)
    return out


def row_count(session) -> int:  # type: ignore[no-untyped-def]
    return sum(session.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables)


# --- fixtures -----------------------------------------------------------------------------------

@pytest.fixture
def sqlite_source(sqlite_template: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """An app on a SQLite file with every table filled (whatever TEST_DATABASE_URL says)."""
    path = tmp_path / "source.db"
    shutil.copy(sqlite_template, path)
    config = base_config(f"sqlite:///{path}") | {"WEBHOOK_ALLOW_PRIVATE": True, "REDIS_URL": None,
                                                  "WEBHOOK_SEND_ON_COMMIT": False}
    app = create_app(config)
    with app.app_context():
        fill_inventory(_db.session)
        _db.session.remove()
    yield app
    with app.app_context():
        _db.engine.dispose()


@pytest.fixture
def source_dump(sqlite_source, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / "source.jsonl"
    with sqlite_source.app_context():
        dump.write_dump(_db.engine, path)
    return path


def test_round_trip_sqlite_to_postgresql_gives_identical_sections(
        sqlite_source, require_postgres, admin_url_for_new_database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = tmp_path / "sqlite.jsonl.gz"
    with sqlite_source.app_context():
        empty = [t.name for t in Base.metadata.sorted_tables
                 if not _db.session.scalar(select(func.count()).select_from(t))]
        assert empty == [], f"tables the inventory left empty: {empty}"
        result = dump.write_dump(_db.engine, first)
        runner = sqlite_source.test_cli_runner()
        assert runner.invoke(args=["audit", "verify"]).output.startswith("OK")
        _db.session.remove()
    assert result.keys and result.keys[0]["secrets"] >= 2  # a connection string and a webhook secret

    target_url = admin_url_for_new_database()
    migrate_to_head(target_url)
    target = create_app(base_config(target_url))
    second = tmp_path / "postgresql.jsonl"
    with target.app_context():
        runner = target.test_cli_runner()
        loaded = runner.invoke(args=["load", str(first)])
        assert loaded.exit_code == 0, loaded.output
        assert "audit chain verified" in loaded.output
        verified = runner.invoke(args=["audit", "verify"])
        assert verified.output.startswith("OK"), verified.output
        dumped = runner.invoke(args=["dump", str(second)])
        assert dumped.exit_code == 0, dumped.output
        load_event = _db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert load_event.action is AuditAction.load and load_event.change_set_id is not None
        _db.session.remove()
        _db.engine.dispose()

    a, b = sections_of(read_lines(first)), sections_of(read_lines(second))
    assert list(a) == list(b)
    action_at = next(s for s in dump.sections() if s.name == "audit_events").columns.index("action")
    for table in a:
        if table == "audit_events":  # the load's own event follows the loaded chain
            assert b[table][:-1] == a[table]
            assert json.loads(b[table][-1])[action_at] == "load"
        elif table == "change_sets":  # the load's change set
            assert sorted(r for r in b[table] if '"load"' not in r) == sorted(a[table])
            assert len(b[table]) == len(a[table]) + 1
        elif table == "settings":  # the anchor moved to the load's event
            assert sorted(r for r in b[table] if "audit_anchor" not in r) == sorted(
                r for r in a[table] if "audit_anchor" not in r)
        else:  # the same rows; PostgreSQL gives them in the order it stores them (dump.ORDERED_TABLES)
            assert sorted(b[table]) == sorted(a[table]), f"{table} differs after the round trip"
    header = json.loads(read_lines(first)[0])
    assert header["version"] == dump.FORMAT_VERSION and header["schema_revision"]
    assert header["audit_anchor"]["id"] == len(a["audit_events"])
    everything = "".join(read_lines(first))
    assert "secret@" not in everything and "whsec_" not in everything  # secrets stay encrypted


def test_dump_values_are_portable(sqlite_source, source_dump: Path) -> None:  # type: ignore[no-untyped-def]
    lines = read_lines(source_dump)
    header = json.loads(lines[0])
    assert set(header["tables"]) == {s.name for s in dump.sections()} and "alembic_version" not in header["tables"]
    sections = sections_of(lines)
    columns = next(json.loads(ln)["columns"] for ln in lines if ln.startswith('{"table": "assets"'))
    orders = next(json.loads(r) for r in sections["assets"] if '"orders-db"' in r)
    row = dict(zip(columns, orders, strict=True))
    uuid.UUID(row["id"])
    assert row["created_at"].endswith("+00:00") and "T" in row["created_at"]
    assert row["metadata"] == {"a": [1, 2.5, None], "ü": "é\t\"x\\", "zone": "b"}
    assert row["connection_string_encrypted"].startswith("gAAAA")
    assert header["tables"]["assets"] == len(sections["assets"])


# --- load refuses, and writes nothing -------------------------------------------------------------

def refused(app, path: Path, *needles: str) -> None:  # type: ignore[no-untyped-def]
    result = app.test_cli_runner().invoke(args=["load", str(path)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output
    _db.session.remove()
    assert row_count(_db.session) == 0, "a refused load left rows behind"


def test_load_refuses_a_database_that_is_not_empty(app, session, source_dump: Path) -> None:  # type: ignore[no-untyped-def]
    make_asset(session)
    before = row_count(session)
    result = app.test_cli_runner().invoke(args=["load", str(source_dump)])
    assert result.exit_code == 1 and "not empty" in result.output and "assets" in result.output
    session.remove() if hasattr(session, "remove") else None
    assert row_count(_db.session) == before


def test_load_refuses_a_newer_format_and_another_schema_revision(app, source_dump: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = read_lines(source_dump)
    header = json.loads(lines[0])
    newer = tmp_path / "newer.jsonl"
    write_lines(newer, [json.dumps(header | {"version": dump.FORMAT_VERSION + 1}), *lines[1:]])
    refused(app, newer, "format version 2", "newer")
    other = tmp_path / "other.jsonl"
    write_lines(other, [json.dumps(header | {"schema_revision": "0123abcd"}), *lines[1:]])
    refused(app, other, "0123abcd", header["schema_revision"])


def test_load_refuses_a_truncated_file_naming_the_line(app, source_dump: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = read_lines(source_dump)
    cut = tmp_path / "cut.jsonl"
    write_lines(cut, lines[: len(lines) // 2])
    refused(app, cut, f"line {len(lines) // 2}", "truncated")
    mid_line = tmp_path / "midline.jsonl"
    text_ = "\n".join(lines) + "\n"
    cut_at = len(text_) // 3
    if text_[cut_at - 1] == "\n":  # inside a line, not at its end (row sizes vary from run to run)
        cut_at -= 1
    mid_line.write_text(text_[:cut_at], encoding="utf-8")
    refused(app, mid_line, "cut short")
    zipped = tmp_path / "cut.jsonl.gz"
    data = gzip.compress(text_.encode())
    zipped.write_bytes(data[: len(data) // 2])
    refused(app, zipped, "truncated")


def test_load_refuses_a_corrupted_line(app, source_dump: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = read_lines(source_dump)
    at = next(i for i, ln in enumerate(lines) if ln.startswith('{"table": "assets"')) + 2
    broken = tmp_path / "broken.jsonl"
    write_lines(broken, [*lines[:at], lines[at][:-7] + "}{", *lines[at + 1:]])
    refused(app, broken, f"line {at + 1}", "not valid JSON")
    wrong_value = tmp_path / "wrong-value.jsonl"
    bad_uuid = rewrite_rows(lines, "assets", lambda row: row.__setitem__(-3, "not-a-uuid"), index=1)
    write_lines(wrong_value, bad_uuid)
    refused(app, wrong_value, f"line {at + 1}", "assets.id")
    flipped = tmp_path / "flipped.jsonl"  # valid JSON, but not what was dumped
    # an asset row that holds "active" (the dump's rows of a table come in no fixed order)
    active = lines.index(next(row for row in sections_of(lines)["assets"] if '"active"' in row))
    write_lines(flipped, [*lines[:active], lines[active].replace('"active"', '"inactive"', 1), *lines[active + 1:]])
    refused(app, flipped, "assets", "checksum")


def test_load_refuses_keys_it_does_not_have_before_writing(app_config, source_dump: Path) -> None:  # type: ignore[no-untyped-def]
    other = create_app(app_config | {"INVENTORY_ENCRYPTION_KEYS": [Fernet.generate_key().decode()]})
    with other.app_context():
        header = json.loads(read_lines(source_dump)[0])
        refused(other, source_dump, "not configured here", header["keys"][0]["fingerprint"])
        _db.session.remove()
        _db.engine.dispose()


def test_load_refuses_a_broken_chain_or_wrong_counts_naming_the_table(app, source_dump: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = read_lines(source_dump)
    columns = next(json.loads(ln)["columns"] for ln in lines if ln.startswith('{"table": "audit_events"'))
    edited = tmp_path / "edited-event.jsonl"
    write_lines(edited, rewrite_rows(lines, "audit_events",
                                     lambda row: row.__setitem__(columns.index("message"), "rewritten"), index=3))
    refused(app, edited, "audit_events", "event 4", "hash")
    header = json.loads(lines[0])
    miscounted = tmp_path / "miscounted.jsonl"
    write_lines(miscounted, [json.dumps(header | {"tables": header["tables"] | {"tags": header["tables"]["tags"] + 1}}),
                             *lines[1:]])
    refused(app, miscounted, "tags", "counts")
    start = next(i for i, ln in enumerate(lines) if ln.startswith('{"table": "audit_events"'))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith('{"end": "audit_events"'))
    dropped_last = tmp_path / "dropped-last-event.jsonl"  # the newest event gone, counts and checksum fixed
    kept = lines[start + 1:end - 1]
    digest = hashlib.sha256("".join(ln + "\n" for ln in kept).encode()).hexdigest()
    trailer = json.dumps({"end": "audit_events", "rows": len(kept), "sha256": digest})
    write_lines(dropped_last, [json.dumps(header | {"tables": header["tables"] | {"audit_events": len(kept)}}),
                               *lines[1:start + 1], *kept, trailer, *lines[end + 1:]])
    refused(app, dropped_last, "audit_events", "anchor")


def test_load_works_again_after_a_refusal_and_records_one_event(app, source_dump: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = read_lines(source_dump)
    cut = tmp_path / "cut.jsonl"
    write_lines(cut, lines[:-1])
    refused(app, cut, "truncated")
    result = app.test_cli_runner().invoke(args=["load", str(source_dump)])
    assert result.exit_code == 0, result.output
    header = json.loads(lines[0])
    session = _db.session
    assert row_count(session) == sum(header["tables"].values()) + 2  # the load's change set and event
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event.id == header["audit_anchor"]["id"] + 1 and event.action is AuditAction.load
    change_set = session.get(ChangeSet, event.change_set_id)
    assert change_set.kind.value == "load" and change_set.number is not None
    assert audit.verify(session).ok
    # integer keys continue after the loaded ids (sequences moved on PostgreSQL)
    tag_id = session.execute(insert(Base.metadata.tables["tags"]).values(name="after-load")
                             .returning(Base.metadata.tables["tags"].c.id)).scalar_one()
    assert tag_id > header["tables"]["tags"]
    session.rollback()


def test_a_killed_load_commits_nothing(app, source_dump: Path, tmp_path: Path, app_config) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL in the middle of a load (half the file read and written into the transaction,
    through a pipe that holds the rest back): nothing is committed, and a re-run loads it all."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": "x",
           "INVENTORY_ENCRYPTION_KEYS": app_config["INVENTORY_ENCRYPTION_KEYS"][0]}
    lines = read_lines(source_dump)
    fifo = tmp_path / "dump.fifo"
    os.mkfifo(fifo)
    child = subprocess.Popen([sys.executable, "-m", "flask", "--app", "webapp", "load", str(fifo)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with open(fifo, "w", encoding="utf-8") as pipe:  # opens once the child reads
            pipe.write("\n".join(lines[: len(lines) * 2 // 3]) + "\n")
            pipe.flush()
            time.sleep(1.0)  # the child writes those rows into its transaction
            assert child.poll() is None, "the load ended before it was killed"
            child.send_signal(signal.SIGKILL)
            child.wait()
    except BrokenPipeError:
        pass
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)
    _db.session.remove()
    assert row_count(_db.session) == 0
    result = app.test_cli_runner().invoke(args=["load", str(source_dump)])
    assert result.exit_code == 0, result.output
    assert row_count(_db.session) == sum(json.loads(lines[0])["tables"].values()) + 2


def test_dump_refuses_to_overwrite_and_removes_a_partial_file(app, session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    make_asset(session)
    tmp_path = tmp_path / "dumps"
    tmp_path.mkdir()
    existing = tmp_path / "exists.jsonl"
    existing.write_text("keep me")
    result = app.test_cli_runner().invoke(args=["dump", str(existing)])
    assert result.exit_code == 2 and "already exists" in result.output and existing.read_text() == "keep me"

    def disk_full(done: int, total: int) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(dump.DumpFailed, match="No space left"):
        dump.write_dump(_db.engine, tmp_path / "full.jsonl.gz", progress=disk_full)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.jsonl"]


def test_every_column_type_has_a_codec() -> None:
    for section in dump.sections():
        assert len(section.columns) == len(section.codecs) > 0


def test_sequences_table_names_are_generic() -> None:
    # the dump names no table of its own: every table of the metadata but alembic_version
    assert [s.name for s in dump.sections()] == [t.name for t in Base.metadata.sorted_tables
                                                  if t.name != "alembic_version"]



def test_dump_reads_one_snapshot_while_others_write(app, session, require_postgres, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An asset committed by someone else while the dump runs is not in it, and every count in
    the header is the number of rows its table's section holds."""
    for _ in range(3):
        make_asset(session)
    session.commit()
    written = []

    def meanwhile(done: int, total: int) -> None:
        if not written:  # once, after the first rows are out
            other = create_app(base_config(require_postgres))
            with other.app_context():
                written.append(make_asset(_db.session, name="written-during-the-dump").id)
                _db.session.remove()
                _db.engine.dispose()

    path = tmp_path / "during.jsonl"
    result = dump.write_dump(_db.engine, path, progress=meanwhile)
    lines = read_lines(path)
    sections = sections_of(lines)
    assert written and result.tables["assets"] == 3 == len(sections["assets"])
    assert "written-during-the-dump" not in "".join(lines)
    assert all(len(sections[t]) == n for t, n in json.loads(lines[0])["tables"].items())
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Base.metadata.tables["assets"])) == 4
