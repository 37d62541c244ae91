"""Export workload of `make bench` (SPEC §11: export of 1,000,000 assets, CSV and JSON, within
3x a `COPY (SELECT …) TO STDOUT` of the same columns, in constant memory).

Each export runs as `flask --app webapp export --format F -o /dev/null` in a child process (the
same service as the page's and the API's export). Its time is the one the command reports: from
before the count and the audit event to the last byte written, without the interpreter's start
and the app's imports (seconds on a busy machine, and the same whatever the size). The same
command with a search that matches nothing gives what does not depend on the rows (connecting,
compiling the statement, the count, the audit event): the ratio is of the difference, which at
1,000,000 rows is nearly all of it. Peak resident memory is the child's own high-water mark
(VmHWM), and memory is flat when the full export's peak stays within TARGET_EXTRA_MB of the
empty export's, whatever the number of rows.

The floor is what PostgreSQL alone needs for the same answer: `COPY (SELECT <the export's
columns, tags aggregated per asset> FROM assets WHERE deleted_at IS NULL ORDER BY name, id) TO
STDOUT`, read to the end by a client (psycopg) and written nowhere. The columns are as stored,
in PostgreSQL's own text output. On PostgreSQL the product's CSV and JSON are themselves one
COPY of the same rows (webapp/services/exports.py, `_copied`), each cell formatted as the file
shows it (formula guard, lists joined, ISO timestamps; JSON objects built by `row_to_json`), so
the ratio is what that formatting, the bigger JSON output, joining rows into chunks and writing
them cost over the bare read.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass

import psycopg

from bench import data
from bench.imports import _env
from webapp.services.exports import COLUMNS

TARGET_RATIO = 3.0
TARGET_EXTRA_MB = 100.0
NOTHING = "no-such-asset-xyzzy"  # a search no bench asset matches: the baseline memory
REPORTED = re.compile(r" in ([\d.]+)s\.$")
TAGS_SQL = ("(SELECT string_agg(t.name, '; ' ORDER BY t.name) FROM asset_tags at "
            "JOIN tags t ON t.id = at.tag_id WHERE at.asset_id = a.id)")


class ChildRun:
    """A command measured in a child process against a floor: its time net of the same command
    on nothing (`seconds - fixed_s`), the ratio to the floor, and its peak memory over the
    baseline's (the export and the dump/load workloads share these)."""

    seconds: float
    fixed_s: float
    floor_s: float
    peak_mb: float
    baseline_mb: float

    @property
    def net_s(self) -> float:
        return max(self.seconds - self.fixed_s, 0.0)

    @property
    def ratio(self) -> float:
        return self.net_s / self.floor_s if self.floor_s else float("inf")

    @property
    def extra_mb(self) -> float:
        return self.peak_mb - self.baseline_mb

    @property
    def ok(self) -> bool:
        return self.ratio <= TARGET_RATIO and self.extra_mb <= TARGET_EXTRA_MB


@dataclass
class ExportResult(ChildRun):
    label: str
    rows: int
    seconds: float  # as `flask export` reports it: count, audit, every row written
    fixed_s: float  # the same, exporting nothing
    wall_s: float  # the child process from start to exit
    floor_s: float
    peak_mb: float
    baseline_mb: float
    outcome: str

    def line(self) -> str:
        verdict = "OK" if self.ok else "MISSED"
        return (
            f"{self.label:<12} {self.rows:>9,} rows  {self.net_s:6.2f}s ({self.seconds:.2f}s "
            f"less {self.fixed_s:.2f}s exporting nothing; process {self.wall_s:.1f}s)  "
            f"floor COPY {self.floor_s:6.2f}s  "
            f"ratio {self.ratio:4.2f}x (target <= {TARGET_RATIO:.0f}x)  peak RSS "
            f"{self.peak_mb:,.0f} MB (exporting nothing: {self.baseline_mb:,.0f} MB, "
            f"+{self.extra_mb:,.0f} MB; target <= +{TARGET_EXTRA_MB:.0f} MB) {verdict}\n"
            f"    {self.outcome}"
        )


def floor_sql() -> str:
    """The export's columns (webapp/services/exports.COLUMNS), as one COPY in the list's order."""
    expressions = []
    for column in COLUMNS:
        if column == "tags":
            expressions.append(TAGS_SQL)
        elif column == "has_connection_string":
            expressions.append("a.connection_string_encrypted IS NOT NULL")
        else:
            expressions.append(f'a."{column}"')
    return (f"COPY (SELECT {', '.join(expressions)} FROM assets a WHERE a.deleted_at IS NULL "
            "ORDER BY a.name, a.id) TO STDOUT (FORMAT csv, HEADER)")


def floor(url: str) -> tuple[float, int]:
    """(seconds, bytes) of the COPY, read to the end and dropped."""
    size = 0
    with psycopg.connect(data.conninfo(url)) as conn:
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(floor_sql()) as copy:
            for block in copy:
                size += len(block)
        return time.perf_counter() - started, size


def run_export(url: str, fmt: str, *filters: str) -> tuple[float, float, float, str]:
    """(seconds it reports, wall seconds, peak RSS MB, its summary line) of `flask export` in a
    child process."""
    env = {**os.environ, **{k: str(v) for k, v in _env(url).items()}}
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "webapp", "export", "--format", fmt,
         "-o", os.devnull, *filters],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    peak_mb = 0.0
    while True:  # the child's own high-water mark, read while it runs (see _high_water_mb)
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        peak_mb = max(peak_mb, _high_water_mb(child.pid) or 0.0)
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    output = child.stdout.read() if child.stdout else ""
    if child.stdout:
        child.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"flask export --format {fmt} failed:\n{output[-2000:]}")
    summary = next((ln for ln in output.splitlines() if ln.startswith("Exported ")), "")
    reported = REPORTED.search(summary)
    if reported is None:
        raise SystemExit(f"flask export said no time:\n{output[-2000:]}")
    return float(reported.group(1)), seconds, peak_mb or usage.ru_maxrss / 1024, summary.strip()


def _high_water_mb(pid: int) -> float | None:
    """Peak resident memory of a running process since its exec (VmHWM), in MB. Not wait4's
    ru_maxrss: that also counts the memory the child had before exec, a copy of this process's
    (which grows with the data it built)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run(url: str) -> list[ExportResult]:
    """CSV and JSON of every live asset, each beside the floor and the empty export."""
    with psycopg.connect(data.conninfo(url)) as conn:
        rows = conn.execute("SELECT count(*) FROM assets WHERE deleted_at IS NULL").fetchone()[0]
    # the floor's best of three: a noisy machine can only make the ratio worse, not better
    floor_s, floor_bytes = min(floor(url) for _ in range(3))
    print(f"\nexports: every live asset ({rows:,}) in the list's default order; floor: COPY of "
          f"the same columns, {floor_bytes / 1e6:,.1f} MB of CSV, {floor_s:.2f}s", flush=True)
    results = []
    for fmt, label in (("csv", "export CSV"), ("json", "export JSON")):
        fixed_s, _, baseline_mb, _ = run_export(url, fmt, "--q", NOTHING)
        seconds, wall_s, peak_mb, summary = run_export(url, fmt)
        result = ExportResult(label, rows, seconds, fixed_s, wall_s, floor_s, peak_mb, baseline_mb,
                              summary)
        results.append(result)
        print(result.line(), flush=True)
    return results
