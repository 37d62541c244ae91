"""Dump and load workload of `make bench` (SPEC §11: `dump` and `load` of 1,000,000 assets with
their audit events, each within 3x a `COPY` of the same tables, in constant memory).

The bench database gets one `create` audit event per asset first, if it has fewer events than
assets (written by `audit.record_many`, so the chain and its anchor are the app's own). Then:

* **dump**: `flask --app webapp dump FILE` in a child process, against the floor: `COPY (SELECT
  <the same columns> FROM t) TO STDOUT` of every table the dump writes, read to the end by a
  client and dropped.
* **load**: `flask --app webapp load FILE` of that dump into a freshly migrated database in a
  child process, against the floor: `COPY t (<columns>) FROM STDIN` of every table, from the
  floor's own output, in one transaction into another freshly migrated database.

Each product figure is the time the command reports (without the interpreter's start), less the
same command's on an empty database (what does not depend on the rows: the header's counts, the
checks, the load's event). Peak resident memory is the child's VmHWM, and memory is flat when
the full run's peak stays within TARGET_EXTRA_MB of the empty run's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from bench import data
from bench.exports import ChildRun, _high_water_mb
from bench.imports import _env

TARGET_RATIO = 3.0
TARGET_EXTRA_MB = 100.0
REPORTED = re.compile(r" in ([\d.]+)s[.;]")
EVENTS_BATCH = 10_000


@dataclass
class DumpResult(ChildRun):
    label: str
    rows: int
    seconds: float  # as the command reports it
    fixed_s: float  # the same command on an empty database
    floor_s: float
    peak_mb: float
    baseline_mb: float
    size_mb: float

    def line(self) -> str:
        return (f"{self.label:<6} {self.rows:>11,} rows  {self.net_s:7.2f}s ({self.seconds:.2f}s less "
                f"{self.fixed_s:.2f}s on an empty database)  floor COPY {self.floor_s:7.2f}s  "
                f"ratio {self.ratio:4.2f}x (target <= {TARGET_RATIO:.0f}x)  file {self.size_mb:,.1f} MB  "
                f"peak RSS {self.peak_mb:,.0f} MB (empty: {self.baseline_mb:,.0f} MB, +{self.extra_mb:,.0f} MB; "
                f"target <= +{TARGET_EXTRA_MB:.0f} MB) {'OK' if self.ok else 'MISSED'}")


def ensure_events(url: str) -> int:
    """One `create` event per asset, appended to the app's chain, if there are fewer events
    than assets. Returns the number of events."""
    from sqlalchemy import func, select, text

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Asset, AuditAction, AuditEvent
    from webapp.services import audit
    from webapp.services.actor import Actor

    app = create_app(data.app_config(url))
    with app.app_context():
        session = db.session
        events = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
        assets = session.scalar(select(func.count()).select_from(Asset)) or 0
        if events < assets:
            actor = Actor.cli("bench")
            after = None
            started = time.perf_counter()
            while True:
                stmt = select(Asset.id, Asset.name, Asset.engine).order_by(Asset.id).limit(EVENTS_BATCH)
                if after is not None:
                    stmt = stmt.where(Asset.id > after)
                rows = session.execute(stmt).all()
                if not rows:
                    break
                audit.record_many(session, actor, [
                    audit.Entry(AuditAction.create, "asset", r[0], {"name": [None, r[1]], "engine": [None, r[2]]})
                    for r in rows])
                session.commit()
                after = rows[-1][0]
            events = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
            # the planner's statistics, as an import of that many records leaves them: without
            # them the dashboard's latest changes read every asset event (1.2 s at 1,000,000)
            session.execute(text("ANALYZE audit_events"))
            session.commit()
            print(f"  (wrote {events:,} audit events, one per asset, in {time.perf_counter() - started:.1f}s)",
                  flush=True)
        db.session.remove()
        db.engine.dispose()
    return events


def fresh_database(url: str) -> None:
    """Drop and create the database, migrated to head."""
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db

    name = make_url(url).database
    with psycopg.connect(data.conninfo(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    app = create_app(data.app_config(url))
    with app.app_context():
        upgrade()
        db.engine.dispose()


def _tables() -> list[tuple[str, list[str]]]:
    from webapp.services import dump

    return [(s.name, s.columns) for s in dump.sections()]


def floor_dump(url: str, into: Path | None = None) -> tuple[float, int]:
    """(seconds, rows) of COPY TO of every dumped table, read to the end (and, with `into`,
    kept as one file per table for the load floor, untimed)."""
    rows = 0
    with psycopg.connect(data.conninfo(url)) as conn:
        started = time.perf_counter()
        for table, columns in _tables():
            names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
            statement = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(names, sql.Identifier(table))
            out = open(into / f"{table}.copy", "wb") if into is not None else None  # noqa: SIM115
            with conn.cursor() as cur, cur.copy(statement) as copy:
                for block in copy:
                    rows += 1
                    if out is not None:
                        out.write(block)
            if out is not None:
                out.close()
        return time.perf_counter() - started, rows


def floor_load(url: str, source: Path) -> float:
    """Seconds of COPY FROM of every table's floor output, one transaction, parents first."""
    with psycopg.connect(data.conninfo(url)) as conn:
        started = time.perf_counter()
        for table, columns in _tables():
            names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
            with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(table), names)) as copy, open(source / f"{table}.copy", "rb") as f:
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
        conn.commit()
        return time.perf_counter() - started


def run_command(url: str, *args: str) -> tuple[float, float, str]:
    """(seconds it reports, peak RSS MB, its output) of `flask --app webapp ARGS` in a child."""
    env = {**os.environ, **{k: str(v) for k, v in _env(url).items()}}
    child = subprocess.Popen([sys.executable, "-m", "flask", "--app", "webapp", *args], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak_mb = 0.0
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        peak_mb = max(peak_mb, _high_water_mb(child.pid) or 0.0)
        time.sleep(0.02)
    output = child.stdout.read() if child.stdout else ""
    if child.stdout:
        child.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{output[-2000:]}")
    reported = REPORTED.search(output)
    if reported is None:
        raise SystemExit(f"flask {' '.join(args)} said no time:\n{output[-2000:]}")
    return float(reported.group(1)), peak_mb or usage.ru_maxrss / 1024, output


def run(url: str) -> list[DumpResult]:
    """Dump the bench database and load it into a fresh one, each beside its COPY floor."""
    target = make_url(url).set(database=f"{make_url(url).database}_load").render_as_string(hide_password=False)
    print("\ndump and load: every table of the bench database (assets with their audit events), "
          f"loaded into {make_url(target).database}", flush=True)
    events = ensure_events(url)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-dump-") as tmp:
        work = Path(tmp)
        fresh_database(target)
        empty_dump = work / "empty.jsonl"
        fixed_dump_s, baseline_dump_mb, _ = run_command(target, "dump", str(empty_dump))
        floor_s, rows = min(floor_dump(url) for _ in range(3))
        full_dump = work / "full.jsonl"
        seconds, peak_mb, _ = run_command(url, "dump", str(full_dump))
        size_mb = full_dump.stat().st_size / 1e6
        results.append(DumpResult("dump", rows, seconds, fixed_dump_s, floor_s, peak_mb, baseline_dump_mb, size_mb))
        print(results[-1].line(), flush=True)

        copies = work / "copies"
        copies.mkdir()
        floor_dump(url, copies)
        fresh_database(target)
        load_floor_s = floor_load(target, copies)
        fresh_database(target)
        fixed_load_s, baseline_load_mb, _ = run_command(target, "load", str(empty_dump))
        fresh_database(target)
        seconds, peak_mb, _ = run_command(target, "load", str(full_dump))
        results.append(DumpResult("load", rows, seconds, fixed_load_s, load_floor_s, peak_mb, baseline_load_mb,
                                  size_mb))
        print(results[-1].line(), flush=True)
    print(f"  ({events:,} audit events among the {rows:,} rows)", flush=True)
    return results
