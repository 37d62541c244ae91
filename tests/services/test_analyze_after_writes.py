"""A write that changes a large share of a table refreshes the planner's statistics before it
reports success (issue 18: after a 100,000-record import into an empty database the tables had
never been analysed and the plain list page was ten times slower than the filtered ones)."""

from __future__ import annotations

from sqlalchemy import text

from tests.imports.helpers import inventory
from webapp.services import database, imports
from webapp.services.actor import Actor


def _estimate(session, table: str) -> float:  # type: ignore[no-untyped-def]
    return session.execute(text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table}).scalar()


def test_a_table_is_analysed_when_a_write_changed_a_large_share_of_it(session, require_postgres):
    session.execute(text("INSERT INTO tags (name, colour) SELECT 'bulk-' || g, '#6b7280' FROM generate_series(1, 20000) g"))
    assert database.analyze_changed(session, {"tags": 20000}) == ["tags"]  # none or few rows known
    session.commit()
    assert _estimate(session, "tags") == 20000
    assert database.analyze_changed(session, {"tags": 1500}) == []  # 7.5 %: the estimate still holds
    assert database.analyze_changed(session, {"tags": 999}) == []  # too few rows to matter
    assert database.analyze_changed(session, {"tags": 5000}) == ["tags"]


def _last_analyze(session, table: str):  # type: ignore[no-untyped-def]
    session.execute(text("SELECT pg_stat_clear_snapshot()"))
    return session.execute(text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = :t"),
                           {"t": table}).scalar()


def test_an_import_into_an_empty_database_leaves_its_tables_analysed(session, require_postgres):
    tables = ("assets", "asset_identifiers", "audit_events", "import_records")
    # the suite empties tables with DELETE, which keeps the estimate an earlier test's big import
    # left (an estimate of 20,000 makes 1,200 new rows too small a share): start from empty, analysed
    for table in tables:
        session.execute(text(f'ANALYZE "{table}"'))
    session.commit()
    started = session.execute(text("SELECT clock_timestamp()")).scalar()
    session.commit()
    data = inventory(*[{"name": f"db{i}", "engine": "postgresql", "host": f"pg{i}.example.com", "port": 5432}
                       for i in range(1200)])
    run = imports.create_run(session, Actor.cli(), data=data.encode(), filename="big.json")
    imports.execute(session, run.id)
    assert run.created == 1200
    for table in tables:
        analysed = _last_analyze(session, table)
        assert analysed is not None and analysed > started, table


def test_sqlite_has_nothing_to_analyse(sqlite_app):
    session = sqlite_app.extensions["sqlalchemy"].session
    assert database.analyze_changed(session, {"assets": 100_000}) == []
