"""`python -m bench.observations`: import time with and without observations (issue 17).

OBS_N records (default 20,000) of inventory-json into an empty inventory (every record
creates), then the same file with a quarter of the records changed (updates; the rest are
identical records recognised without loading their assets). Each case runs on a freshly emptied
database (OBS_BENCH_URL, dropped and migrated first unless OBS_KEEP_SCHEMA is set), observations
on and off alternately, best of OBS_R rounds; with observations on it also prints the time spent
inside the observation statements as a share of the same run, which a busy machine skews less
than two runs' wall clocks. Not part of `make bench`."""

from __future__ import annotations

import json
import os
import sys
import time

from sqlalchemy import create_engine, text

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from tests.conftest import _truncate_all, base_config, migrate_to_head  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.services import imports, observations  # noqa: E402
from webapp.services.actor import Actor  # noqa: E402

URL = os.environ.get("OBS_BENCH_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/inventory_h2_obs")
N = int(os.environ.get("OBS_N", "20000"))
R = int(os.environ.get("OBS_R", "3"))
ENGINES = ["postgresql", "mysql", "mssql", "oracle", "mongodb", "redis"]


def records(changed: bool) -> bytes:
    out = []
    for i in range(N):
        out.append({
            "name": f"db-{i:06d}", "engine": ENGINES[i % len(ENGINES)], "engine_version": f"{10 + i % 7}.{i % 5}",
            "host": f"h{i:06d}.dc1.example.com", "port": 5000 + i % 1000, "database_name": f"app{i % 300}",
            "environment": ["production", "staging", "development"][i % 3],
            "owner": f"team-{i % 40}" + ("-new" if changed and i % 4 == 0 else ""),
            "criticality": ["low", "medium", "high", "critical"][i % 4], "region": "eu-west-1",
            "tags": [f"app{i % 30}"],
        })
    return json.dumps({"source": "cmdb-export", "assets": out}).encode()


def run(app, data: bytes, name: str) -> float:
    with app.app_context():
        session = db.session
        run = imports.create_run(session, Actor.cli("bench"), data=data, filename=name, source=None, dry_run=False)
        began = time.perf_counter()
        run = imports.execute(session, run.id)
        took = time.perf_counter() - began
        assert run.status.value == "succeeded", run.error
        session.remove()
        return took


def main() -> None:
    admin = create_engine(URL.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if not c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": URL.rsplit("/", 1)[1]}).scalar():
            c.execute(text(f'CREATE DATABASE "{URL.rsplit("/", 1)[1]}"'))
    admin.dispose()
    if not os.environ.get("OBS_KEEP_SCHEMA"):
        engine = create_engine(URL)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        migrate_to_head(URL)
    app = create_app(base_config(URL))
    first, second = records(False), records(True)
    real_report, real_in_run = observations.report, observations.reported
    results: dict[tuple[str, bool], list[float]] = {}
    spent = [0.0]

    def timed(fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[0] += time.perf_counter() - t
        return wrapper

    for _ in range(R):
        for on in (True, False):
            spent[0] = 0.0
            if on:
                observations.report, observations.reported = timed(real_report), timed(real_in_run)
            else:
                observations.report = lambda *a, **k: None
                observations.reported = lambda *a, **k: {}
            _truncate_all(URL)
            results.setdefault(("create", on), []).append(run(app, first, "a.json"))
            in_create = spent[0]
            results.setdefault(("update", on), []).append(run(app, second, "b.json"))
            in_update = spent[0] - in_create
            if on:
                print(f"  inside observation statements: create {in_create:.2f}s "
                      f"({in_create / results[('create', on)][-1]:.1%} of the run), re-import {in_update:.2f}s "
                      f"({in_update / results[('update', on)][-1]:.1%})", flush=True)
            with create_engine(URL).connect() as c:
                rows = c.execute(text("SELECT count(*) FROM observations")).scalar()
            print(f"  observations {'on ' if on else 'off'}: create {results[('create', on)][-1]:.2f}s, "
                  f"re-import with changes {results[('update', on)][-1]:.2f}s, observation rows {rows:,}", flush=True)
    for case in ("create", "update"):
        on, off = min(results[(case, True)]), min(results[(case, False)])
        print(f"{case:<7} {N:,} records: without {off:.2f}s, with {on:.2f}s, +{(on - off) / off:.1%}")


if __name__ == "__main__":
    main()
