"""Matching workload of `make bench` (issue: "match 100,000 incoming records against 1,000,000
existing in ≤ 30 s on PostgreSQL; its cost must grow linearly with the input").

The inventory is 1,000,000 assets in a database of its own (BENCH_MATCHING_DATABASE_URL,
default `inventory_bench_1m`, built once and reused). Matching is measured as a dry run of
`flask --app webapp import FILE --dry-run` in a child process: parse, normalise, block,
score, decide and record every outcome, with nothing written to the inventory. The files mix
what matching meets in practice:

* 40% describe existing assets by an endpoint or cloud id (strong identifiers: merged);
* 10% describe existing cloud assets only by a short host name and name (weak evidence:
  flagged);
* 50% are new databases (no candidate, or candidates below the review threshold: created).

Existing assets are picked among those alone on their endpoint; see `_existing`. The same mix
is run at a quarter, half and all of the records, so the growth is visible: for a
linear cost the time per record stays flat.
"""

from __future__ import annotations

import json
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench import data
from bench.imports import run_import

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/inventory_bench_1m"
TARGET_S = 30.0


@dataclass
class MatchResult:
    records: int
    seconds: float
    peak_mb: float
    outcome: str

    @property
    def per_record_us(self) -> float:
        return self.seconds / self.records * 1e6


def _existing(url: str, n: int, cloud_only: bool = False) -> list[dict[str, Any]]:
    """n live assets, each the only one on its endpoint (a scanner's record names one
    database; the generated inventory puts hundreds of assets on some shared names, which
    would make every such record ambiguous on purpose). `cloud_only`: hosts named after the
    instance, as cloud endpoints are (their first label is rare enough to block on)."""
    with psycopg.connect(data.conninfo(url)) as conn:
        rows = conn.execute(
            "SELECT name, engine, host, port, database_name, cloud_resource_id, environment FROM ("
            " SELECT *, count(*) OVER (PARTITION BY host, port) AS sharing FROM assets"
            " WHERE deleted_at IS NULL AND host IS NOT NULL AND port IS NOT NULL) a "
            "WHERE sharing = 1 " + ("AND cloud_provider IN ('aws', 'gcp') AND engine <> 'dynamodb' " if cloud_only else "")
            + "ORDER BY md5(id::text) LIMIT %s",
            (n,),
        ).fetchall()
    keys = ("name", "engine", "host", "port", "database_name", "cloud_resource_id", "environment")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def build_file(url: str, total: int, path: Path, seed: int = 7) -> None:
    rng = random.Random(seed)
    strong_n, weak_n = total * 4 // 10, total // 10
    strong = _existing(url, strong_n)
    taken = {(a["host"], a["port"]) for a in strong}
    weak = [a for a in _existing(url, strong_n + weak_n, cloud_only=True) if (a["host"], a["port"]) not in taken]
    records: list[dict[str, Any]] = []
    for asset in strong:
        record = {k: v for k, v in asset.items() if v is not None}
        if rng.random() < 0.5:
            record.pop("cloud_resource_id", None)  # found by its endpoint instead
        record["owner"] = f"team-{rng.randrange(40)}"
        records.append(record)
    for asset in weak[:weak_n]:
        records.append({  # a CMDB-style line: short host name, no port
            "name": asset["name"], "engine": asset["engine"],
            "host": asset["host"].split(".", 1)[0], "database_name": asset["database_name"],
        })
    for i in range(total - len(records)):
        records.append({
            "name": f"incoming-{seed}-{i}", "engine": rng.choice(("postgresql", "mysql", "mssql")),
            "host": f"incoming-{i}.scan.example.org", "port": rng.choice((5432, 3306, 1433)),
            "database_name": f"app_{i % 300}", "environment": rng.choice(("production", "staging")),
        })
    rng.shuffle(records)
    path.write_text(json.dumps({"source": "bench-matching", "assets": records}))


def run(url: str, n_assets: int, n_records: int) -> list[MatchResult]:
    data.ensure_database(url)
    from bench.run import prepare  # the same build and migration as the page workloads

    prepare(url, n_assets, False)
    with psycopg.connect(data.conninfo(url), autocommit=True) as conn:
        # earlier benches' dry runs (their outcome rows) are not part of the inventory: each
        # measurement starts from the same state
        conn.execute("DELETE FROM import_runs")
        conn.execute("DELETE FROM import_files")
        conn.execute("VACUUM ANALYZE import_records")
        conn.execute("VACUUM ANALYZE import_runs")
    print(f"\nmatching: dry-run imports against {data.asset_count(url):,} assets "
          f"({url.split('@')[-1]})", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-matching-") as tmp:
        for records in (n_records // 4, n_records // 2, n_records):
            path = Path(tmp) / f"match-{records}.json"
            build_file(url, records, path)
            result = run_import(url, path, f"match {records:,}", TARGET_S, extra=["--dry-run"])
            match = MatchResult(records, result.seconds, result.peak_mb, result.outcome)
            results.append(match)
            target = f"(target <= {TARGET_S:.0f}s) {'OK' if match.seconds <= TARGET_S else 'MISSED'}" \
                if records == n_records else ""
            print(f"match {records:>9,} records {match.seconds:6.1f}s  {match.per_record_us:6.0f} us/record  "
                  f"peak RSS {match.peak_mb:,.0f} MB {target}\n    {match.outcome}", flush=True)
    first, last = results[0], results[-1]
    growth = last.per_record_us / first.per_record_us
    print(f"  growth: {last.records // first.records}x the records took "
          f"{last.seconds / first.seconds:.1f}x the time (per record x{growth:.2f}; 1.00 is linear)")
    return results
