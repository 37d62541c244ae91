"""The embedded default under 50 clients: `/assets` on a SQLite file, served as `make run` serves
it (gunicorn with `webapp/gunicorn_conf.py`'s defaults: one gthread worker process of
WEB_THREADS threads), beside its floor served the same way (`bench/page_floor.py` reading the
same file), driven by the same wrk as the PostgreSQL case (`bench/concurrency.py`).

The SQLite file (BENCH_SQLITE_URL, default `instance/inventory_bench.db`) holds the same assets
as the PostgreSQL bench database (the same generator and seed, `bench/data.py`), written through
SQLAlchemy Core in one transaction; it is rebuilt when its asset count is not the run's.

    .venv/bin/python -m bench.embedded [assets] [seconds]
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, insert
from sqlalchemy.engine import make_url

from bench import concurrency, data

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = f"sqlite:///{ROOT / 'instance' / 'inventory_bench.db'}"
CHUNK = 5_000


def _path(url: str) -> Path:
    database = make_url(url).database
    if make_url(url).get_backend_name() != "sqlite" or not database or database == ":memory:":
        raise SystemExit(f"BENCH_SQLITE_URL must name a SQLite file: {url}")
    return Path(database)


def asset_count(url: str) -> int:
    path = _path(url)
    if not path.exists():
        return -1
    with sqlite3.connect(path) as conn:
        try:
            return conn.execute("SELECT count(*) FROM assets").fetchone()[0]
        except sqlite3.OperationalError:  # no schema yet
            return -1


def _asset(row: tuple) -> dict:  # type: ignore[type-arg]
    values = dict(zip(data.ASSET_COLUMNS, row, strict=True))
    for column in ("aliases", "metadata", "locked_fields"):
        values[column] = json.loads(values[column])
    return values


def migrate(url: str):  # type: ignore[no-untyped-def]
    """Bring the file's schema to head (a reused file too); the app on it."""
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db

    app = create_app(data.app_config(url))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return app


def build(url: str, n: int) -> float:
    """A new file at the schema's head with n generated assets, their tags and identifier keys,
    and the bench admin; returns the seconds it took."""
    from bench.run import ensure_admin
    from webapp.models import Asset, AssetIdentifier, Tag, asset_tags

    began = time.perf_counter()
    path = _path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    app = migrate(url)
    engine = create_engine(url)  # the app's pragmas apply: WAL, busy timeout
    now = datetime.now(UTC).replace(microsecond=0)
    with engine.begin() as conn:
        tag_ids = {}
        for name, (colour, _) in data.TAGS.items():
            tag_ids[name] = conn.execute(
                insert(Tag.__table__).values(name=name, colour=colour)).inserted_primary_key[0]
        assets, links, keys = [], [], []
        for row, tags in data.generate(n, tag_ids, now):
            assets.append(_asset(row))
            links.extend({"asset_id": row[0], "tag_id": t} for t in tags)
            keys.extend({"key": k, "asset_id": row[0]} for k in data.identifier_keys(row))
            if len(assets) >= CHUNK:
                conn.execute(insert(Asset.__table__), assets)
                assets = []
        if assets:
            conn.execute(insert(Asset.__table__), assets)
        for table, rows in ((asset_tags, links), (AssetIdentifier.__table__, keys)):
            for start in range(0, len(rows), CHUNK):
                conn.execute(insert(table), rows[start:start + CHUNK])
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    ensure_admin(app)
    return time.perf_counter() - began


def prepare(url: str, n: int) -> None:
    """Reuse the file when it holds n assets, else build it; say which."""
    existing = asset_count(url)
    if existing == n:
        migrate(url)
        print(f"embedded: {n:,} assets already in {_path(url)}, reused", flush=True)
        return
    seconds = build(url, n)
    print(f"embedded: built {n:,} assets into {_path(url)} in {seconds:.1f}s", flush=True)


def run(n: int, *, seconds: int = concurrency.DURATION_S,
        connections: int = concurrency.CONNECTIONS) -> concurrency.Result:
    """Build or reuse the SQLite file, then measure floor and product as `make run` serves them."""
    url = os.environ.get("BENCH_SQLITE_URL") or DEFAULT_URL
    prepare(url, n)
    return concurrency.run(url, seconds=seconds, connections=connections, embedded=True)


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000,
        seconds=int(sys.argv[2]) if len(sys.argv) > 2 else concurrency.DURATION_S)
