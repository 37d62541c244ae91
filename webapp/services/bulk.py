"""Bulk writes for import batches: COPY on PostgreSQL, executemany elsewhere.

Both write inside the caller's transaction, so a batch and its audit events still commit or
roll back together (SPEC §10). Values are Python values as the ORM would take them (enums,
UUIDs, aware datetimes, dicts and lists for JSON columns).
"""

from __future__ import annotations

import enum
import json
import sqlite3
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    MetaData,
    Table,
    any_,
    bindparam,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from webapp.services import cached_counts


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def advisory_lock(session: Session, key: int) -> None:
    """Take a transaction-scoped PostgreSQL advisory lock (nothing elsewhere: SQLite has one
    writer at a time anyway)."""
    if is_postgresql(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def append_lock(session: Session, key: int) -> None:
    """Lock for a read-then-append that must not interleave with another (the audit chain reads
    its last hash, then appends after it), held until the transaction ends: the advisory lock
    on PostgreSQL; on SQLite the database's write lock, taken now (`BEGIN IMMEDIATE`) unless
    this transaction has written already and so holds it. (pysqlite begins a transaction only
    before a write, so a read before it is outside any lock.)"""
    if is_postgresql(session):
        advisory_lock(session, key)
        return
    connection = session.connection()
    dbapi_connection = connection.connection.dbapi_connection
    if isinstance(dbapi_connection, sqlite3.Connection) and not dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def among(session: Session, column: Any, values: list[Any]) -> ColumnElement[bool]:
    """`column IN values` for a long list: one array parameter on PostgreSQL (`= ANY(...)`),
    so the statement stays short and its plan cached, whatever the list's length."""
    if is_postgresql(session):
        return column == any_(literal(list(values), ARRAY(column.type)))
    return column.in_(values)


def next_ids(session: Session, table: Table, n: int) -> list[int]:
    """Draw n ids for a table with an integer key, in increasing order."""
    if n <= 0:
        return []
    if is_postgresql(session):
        return list(
            session.scalars(
                text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
                {"table": table.name, "n": n},
            )
        )
    start = (session.scalar(select(func.max(table.c.id))) or 0) + 1
    return list(range(start, start + n))


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows (all with the same keys) into `table`."""
    if not rows:
        return
    cached_counts.wrote(session, table.name)  # a COPY: the session's events do not see it
    if not is_postgresql(session):
        session.execute(insert(table), [_plain(r) for r in rows])
        return
    columns = list(rows[0])
    converters = [_copy_converter(table.c[name].type) for name in columns]
    plain = all(c is None for c in converters)
    names = ", ".join(f'"{c}"' for c in columns)
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            values = [row[c] for c in columns]
            if not plain:
                values = [v if f is None or v is None else f(v) for f, v in zip(converters, values, strict=True)]
            copy.write_row(values)


class JSONText(str):
    """A value of a JSON column already serialised (COPY writes it as it is)."""


def update_rows(session: Session, table: Table, rows: list[dict[str, Any]], key: str = "id", *,
                versioned: bool = False) -> list[Any]:
    """Write `rows` (all with the same keys, `key` among them) over the rows of `table` with
    the same `key`; return the keys written. On PostgreSQL one statement for them all: COPY
    into a scratch table, then `UPDATE … FROM` it (an UPDATE per row costs a round trip each);
    elsewhere executemany.

    `versioned`: rows carry the new `version`, and only a row still at the version before it
    is written (optimistic locking without locking rows first: one changed meanwhile is left
    as it is, and its key is not returned). SQLite has one writer at a time: nothing to check.
    """
    if not rows:
        return []
    cached_counts.wrote(session, table.name)
    names = [n for n in rows[0] if n != key]
    if is_postgresql(session):
        scratch = Table(f"{table.name}_changes", MetaData(), *[Column(n, table.c[n].type) for n in rows[0]])
        session.execute(text(
            f'CREATE TEMPORARY TABLE "{scratch.name}" ON COMMIT DROP AS SELECT '
            + ", ".join(f'"{n}"' for n in rows[0]) + f' FROM "{table.name}" WITH NO DATA'
        ))
        insert_rows(session, scratch, rows)
        guard = f' AND "{table.name}"."version" = c."version" - 1' if versioned else ""
        written = list(session.scalars(text(
            f'UPDATE "{table.name}" SET ' + ", ".join(f'"{n}" = c."{n}"' for n in names)
            + f' FROM "{scratch.name}" c WHERE "{table.name}"."{key}" = c."{key}"{guard}'
            + f' RETURNING "{table.name}"."{key}"'
        ).columns(**{key: table.c[key].type})))
        session.execute(text(f'DROP TABLE "{scratch.name}"'))
        return written
    stmt = update(table).where(table.c[key] == bindparam("_key")).values({n: bindparam(n) for n in names})
    session.execute(stmt, [{**_plain(r), "_key": r[key]} for r in rows])
    return [r[key] for r in rows]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """The row with JSON already serialised turned back into values (SQLAlchemy's JSON type
    serialises them itself)."""
    return {k: json.loads(v) if isinstance(v, JSONText) else v for k, v in row.items()}


def _dialect_insert(session: Session) -> Any:
    """The INSERT construct with ON CONFLICT of the session's backend."""
    if is_postgresql(session):
        return postgresql.insert
    return sqlite.insert


def insert_ignoring_conflicts(session: Session, table: Table, rows: list[dict[str, Any]],
                              unique: list[str]) -> None:
    """Insert rows, skipping any whose `unique` columns already exist, committed or not:
    `INSERT … ON CONFLICT DO NOTHING` on both backends. Concurrent writers adding the same row
    both succeed (PostgreSQL makes the second wait for the first, then skip)."""
    if not rows:
        return
    session.execute(_dialect_insert(session)(table).on_conflict_do_nothing(index_elements=unique), rows)


def upsert(session: Session, table: Table, row: dict[str, Any], unique: list[str]) -> None:
    """Insert the row, or update its other columns where `unique` already exists."""
    statement = _dialect_insert(session)(table).values(row)
    session.execute(statement.on_conflict_do_update(
        index_elements=unique, set_={k: statement.excluded[k] for k in row if k not in unique}))


def _json(value: Any) -> str:
    if isinstance(value, JSONText):
        return value
    return json.dumps(value, ensure_ascii=False)


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _copy_converter(column_type: Any) -> Any:
    """How a Python value becomes COPY text for this column type (None: psycopg's own)."""
    if isinstance(column_type, JSON) or isinstance(getattr(column_type, "impl", None), JSON):
        return _json
    if isinstance(column_type, SAEnum):
        return _enum_value
    return None
