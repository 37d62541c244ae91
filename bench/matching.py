"""Matching workload of `make bench` (SPEC §11: "matching 100,000 incoming against 1,000,000
existing (dry run) | floor: parsing the same file | linear in records; peak memory <= 600 MB").

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

The floor is parsing the same file with the product's own parser (`webapp.discovery.parse`,
the inventory-json format) in a child process started the same way, timed from start to exit,
with its peak resident memory: what any import of the file costs before matching starts. The
machine is shared, so seconds are compared to the floor of the same run (the ratio), and the
1-minute load average is printed beside them. The verdict at the full size is on what the
contract fixes: peak RSS within TARGET_PEAK_MB, and time linear in records (the time per
record at N within LINEAR_TOLERANCE of that at N/4).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench import data
from bench.exports import _high_water_mb
from bench.imports import _env

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/inventory_bench_1m"
TARGET_PEAK_MB = 600.0
LINEAR_TOLERANCE = 1.3  # per-record time at N over that at N/4
FORMAT = "inventory-json"
# the floor's child: read the file and parse it with the product's parser, nothing else
PARSE = ("import sys; from pathlib import Path; from webapp.discovery import parse; "
         "path = Path(sys.argv[1]); result = parse(path.read_bytes(), filename=path.name, "
         f"format={FORMAT!r}); print(len(result.records))")


@dataclass
class MatchResult:
    label: str
    records: int
    product_s: float  # the dry-run import, start to exit
    floor_s: float  # parsing the same file, start to exit
    peak_mb: float  # the product's peak RSS
    floor_peak_mb: float
    load_1m: float
    outcome: str
    floor_name: str = f"parsing the same file ({FORMAT})"
    linear: bool | None = None  # at the full size: per-record time within LINEAR_TOLERANCE of N/4's
    growth: float | None = None  # per-record time at this size over that at the quarter size

    @property
    def per_record_us(self) -> float:
        return self.product_s / self.records * 1e6

    @property
    def ratio(self) -> float:
        return self.product_s / self.floor_s if self.floor_s else float("inf")

    @property
    def memory_ok(self) -> bool:
        return self.peak_mb <= TARGET_PEAK_MB

    @property
    def ok(self) -> bool:
        return self.memory_ok and self.linear is not False and "succeeded" in self.outcome

    def line(self) -> str:
        return (f"match {self.records:>9,} records  product {self.product_s:.1f}s "
                f"({self.per_record_us:.0f} µs/record, peak RSS {self.peak_mb:,.0f} MB)  "
                f"floor parse {self.floor_s:.1f}s  ratio {self.ratio:.1f}x  "
                f"load average {self.load_1m:.1f}")

    def verdict(self) -> str:
        linear = ("not measured" if self.growth is None
                  else f"x{self.growth:.2f} per record vs N/4 (<= {LINEAR_TOLERANCE}x)")
        return (f"  peak RSS {self.peak_mb:,.0f} MB (<= {TARGET_PEAK_MB:.0f} MB) "
                f"{'OK' if self.memory_ok else 'MISSED'}; time {linear} "
                f"{'OK' if self.linear else 'MISSED'}  => {'OK' if self.ok else 'MISSED'}")


def _child(url: str, args: list[str]) -> tuple[float, float, str, int]:
    """(seconds from start to exit, peak RSS MB, standard output, exit code) of `python ARGS`
    in a child process. The peak is the child's own high-water mark since its exec (VmHWM, read while it
    runs), not wait4's ru_maxrss: that starts from this process's own high-water mark (the
    child's memory before exec was a copy of this one's), which at 1,000,000 assets, after the
    other workloads, is more than the child's."""
    env = {**os.environ, **{k: str(v) for k, v in _env(url).items()}}
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:  # a pipe could fill while nobody reads it
        child = subprocess.Popen([sys.executable, *args], env=env, stdout=out, stderr=subprocess.DEVNULL)
        peak_mb = 0.0
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            peak_mb = max(peak_mb, _high_water_mb(child.pid) or 0.0)
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read()
    return seconds, peak_mb or usage.ru_maxrss / 1024, output, child.returncode


def parse_floor(url: str, path: Path) -> tuple[float, float]:
    """(seconds, peak RSS MB) of parsing `path` in a child process started like the product's."""
    seconds, peak_mb, output, code = _child(url, ["-c", PARSE, str(path)])
    if code != 0:
        raise SystemExit(f"the parse floor failed on {path}:\n{output[-2000:]}")
    return seconds, peak_mb


def dry_run(url: str, path: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS MB, summary line) of `flask import FILE --dry-run` in a child process."""
    seconds, peak_mb, output, _ = _child(
        url, ["-m", "flask", "--app", "webapp", "import", str(path), "--source", "bench", "--dry-run"])
    summary = next((ln for ln in output.splitlines() if ln.startswith("import #") and " records — " in ln),
                   output.strip()[-300:])
    return seconds, peak_mb, summary


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
    """The quarter, half and full sizes, in that order (the last is the verdict's)."""
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
          f"({url.split('@')[-1]}); floor: parsing the same file", flush=True)
    results: list[MatchResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-matching-") as tmp:
        for records in (n_records // 4, n_records // 2, n_records):
            path = Path(tmp) / f"match-{records}.json"
            build_file(url, records, path)
            floor_s, floor_peak = parse_floor(url, path)
            product_s, peak_mb, outcome = dry_run(url, path)
            match = MatchResult(f"match {records:,} records", records, product_s, floor_s,
                                peak_mb, floor_peak, os.getloadavg()[0], outcome)
            if results:
                match.growth = match.per_record_us / results[0].per_record_us
            if records == n_records:
                match.linear = match.growth is not None and match.growth <= LINEAR_TOLERANCE
            results.append(match)
            print(f"{match.line()}\n    {match.outcome}; floor peak RSS {floor_peak:,.0f} MB", flush=True)
            if records == n_records:
                print(match.verdict(), flush=True)
    return results
