"""Whole-database housekeeping: `optimize` and `reset` for the command line (SPEC §8), and the
planner's statistics refreshed after a large write (`analyze_changed`)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from sqlalchemy import MetaData, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from webapp.models import Base

ANALYZE_SHARE = 0.10  # a write that changed this share of a table's rows refreshes its statistics
ANALYZE_MIN_ROWS = 1_000  # below this, the planner's guess cannot be far off


class ResetRefused(RuntimeError):
    pass


def analyze_changed(session: Session, changed: dict[str, int]) -> list[str]:
    """`ANALYZE` each table a write just changed a large share of (`{table: rows written}`),
    in the caller's transaction, before the write reports success: a table never analysed, or
    one whose estimate is 10 % off, sends the planner down the wrong index (a 100,000-record
    import into an empty database left `/assets` ten times slower until autovacuum woke up).
    PostgreSQL only; returns the tables analysed."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    changed = {t: n for t, n in changed.items() if n >= ANALYZE_MIN_ROWS}
    if not changed:
        return []
    estimates = dict(session.execute(
        text("SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' AND relname = ANY(:names) "
             "AND relnamespace = current_schema()::regnamespace"), {"names": list(changed)}).all())
    stale = [t for t, n in changed.items() if t in estimates and (estimates[t] < 0 or n >= ANALYZE_SHARE * estimates[t])]
    for table in stale:
        session.execute(text(f'ANALYZE "{table}"'))
    return stale


@dataclass
class TableOptimized:
    table: str
    seconds: float
    dead_before: int | None
    dead_after: int | None


def optimize(engine: Engine) -> tuple[list[TableOptimized], str]:
    """PostgreSQL: `VACUUM (ANALYZE)` of every table of the models, each outside a transaction,
    with its dead tuples before and after (pg_stat_user_tables). SQLite: `PRAGMA optimize` and
    `VACUUM`. Returns the per-table report and a summary line."""
    if engine.dialect.name == "postgresql":
        return _vacuum_postgresql(engine)
    return _vacuum_sqlite(engine)


def _dead_tuples(connection, table: str) -> int | None:  # type: ignore[no-untyped-def]
    return connection.scalar(text("SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = "
                                  "current_schema() AND relname = :t"), {"t": table})


def _vacuum_postgresql(engine: Engine) -> tuple[list[TableOptimized], str]:
    report = []
    began = time.perf_counter()
    with engine.connect() as base:
        connection = base.execution_options(isolation_level="AUTOCOMMIT")  # VACUUM refuses a transaction
        existing = {r[0] for r in connection.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))}
        for table in Base.metadata.sorted_tables:
            if table.name not in existing:
                continue
            before = _dead_tuples(connection, table.name)
            started = time.perf_counter()
            connection.execute(text(f'VACUUM (ANALYZE) "{table.name}"'))
            seconds = time.perf_counter() - started
            # the statistics collector reports asynchronously: read the figure after a new snapshot
            connection.execute(text("SELECT pg_stat_clear_snapshot()"))
            report.append(TableOptimized(table.name, seconds, before, _dead_tuples(connection, table.name)))
    before = sum(r.dead_before or 0 for r in report)
    after = sum(r.dead_after or 0 for r in report)
    return report, (f"VACUUM (ANALYZE) of {len(report)} tables in {time.perf_counter() - began:.2f}s; "
                    f"dead tuples {before:,} before, {after:,} after.")


def _vacuum_sqlite(engine: Engine) -> tuple[list[TableOptimized], str]:
    path = engine.url.database
    size_before = os.path.getsize(path) if path and os.path.exists(path) else None
    began = time.perf_counter()
    with engine.connect() as base:
        connection = base.execution_options(isolation_level="AUTOCOMMIT")
        connection.execute(text("PRAGMA optimize"))
        connection.execute(text("VACUUM"))
    size_after = os.path.getsize(path) if path and os.path.exists(path) else None
    sizes = (f"; file {size_before:,} bytes before, {size_after:,} after"
             if size_before is not None and size_after is not None else "")
    return [], f"PRAGMA optimize and VACUUM in {time.perf_counter() - began:.2f}s{sizes}."


def reset(engine: Engine, *, environment: str, confirmed: bool) -> list[str]:
    """Drop every table (and, on PostgreSQL, every object of the schema) so `db upgrade` can
    build the schema afresh. Refused unless `environment` is development and `confirmed`.
    Returns the tables dropped."""
    if environment != "development":
        raise ResetRefused(f"reset is only allowed with INVENTORY_ENV=development (this is {environment!r}).")
    if not confirmed:
        raise ResetRefused("reset deletes every row of the database: pass --yes to confirm.")
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            tables = sorted(r[0] for r in connection.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")))
            # the schema's functions and triggers (the audit log's guard) go with it
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
            return tables
        reflected = MetaData()
        reflected.reflect(connection)
        tables = sorted(reflected.tables)
        reflected.drop_all(connection)
        return tables
