"""Migrations and models agree: an empty database upgraded to head has no drift (STYLE: every
migration is tested with `upgrade` on SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from tests.conftest import migrate_to_head
from webapp.models import Base


def _on_this_dialect(dialect: str):  # type: ignore[no-untyped-def]
    """Compare only what this dialect creates: an index made for one dialect alone
    (`Index(...).ddl_if(dialect="postgresql")`) is not drift on another."""
    def include(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
        only = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
        return only is None or only == dialect
    return include


def _drift(url: str) -> list:  # type: ignore[type-arg]
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "compare_type": True, "include_object": _on_this_dialect(conn.dialect.name)})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


# the owner filter's expression index is PostgreSQL's only (webapp/models/asset.py): alembic says
# it cannot compare it on SQLite, which has none
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index 'ix_assets_live_owner'")
def test_empty_sqlite_upgrades_to_head_without_drift(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    migrate_to_head(url)
    assert set(Base.metadata.tables) <= _tables(url)
    assert _drift(url) == []


def test_empty_postgresql_upgrades_to_head_without_drift(require_postgres, admin_url_for_new_database):
    url = admin_url_for_new_database()
    migrate_to_head(url)
    assert set(Base.metadata.tables) <= _tables(url)
    assert _drift(url) == []

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            extensions = set(conn.scalars(text("SELECT extname FROM pg_extension")))
            triggers = set(conn.scalars(text(
                "SELECT tgname FROM pg_trigger "
                "WHERE tgrelid = 'audit_events'::regclass AND NOT tgisinternal"
            )))
            trgm_index = conn.scalar(text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_assets_search_text_trgm'"
            ))
    finally:
        engine.dispose()
    assert "pg_trgm" in extensions
    assert {"audit_events_no_update_delete", "audit_events_no_truncate"} <= triggers
    assert trgm_index is not None and "gin_trgm_ops" in trgm_index


def test_sqlite_pages_the_live_assets_by_walking_the_name_index(tmp_path: Path):
    """On SQLite the deleted_at index holds the trash only: with a full one, the planner took it
    for `deleted_at IS NULL` and sorted every live asset for one page of /assets."""
    url = f"sqlite:///{tmp_path / 'plan.db'}"
    migrate_to_head(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            plan = " | ".join(row[3] for row in conn.execute(text(
                "EXPLAIN QUERY PLAN SELECT id, name FROM assets WHERE deleted_at IS NULL "
                "ORDER BY name, id LIMIT 51")))
            trash = " | ".join(row[3] for row in conn.execute(text(
                "EXPLAIN QUERY PLAN SELECT id FROM assets WHERE deleted_at < '2026-01-01'")))
    finally:
        engine.dispose()
    assert "ix_assets_name_id" in plan and "TEMP B-TREE" not in plan, plan
    assert "ix_assets_deleted_at" in trash, trash
