"""The closing table of `make bench`: one row per SPEC §11 figure, each with the product's
figure, the floor measured beside it in the same run, the ratio, the target, the load average
when the workload finished, and OK or MISSED.

Each workload keeps its own detailed line as it runs; this table is what a note pastes and what
`BENCH_OUT` carries under `summary`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Row:
    workload: str
    product: str  # the product's figure, with its unit
    floor: str  # what the floor is, and its figure
    ratio: float | None  # None: the target is not a ratio (a count, a memory bound)
    target: str
    load: float  # 1-minute load average when the workload finished
    ok: bool
    reported_only: bool = False  # shown beside the targets, not one of them

    @property
    def verdict(self) -> str:
        return "reported" if self.reported_only else ("OK" if self.ok else "MISSED")


def load_now() -> float:
    return os.getloadavg()[0]


def _ms(value: float) -> str:
    return f"{value:,.1f} ms"


def _s(value: float) -> str:
    return f"{value:,.2f} s"


def page_rows(results: list[Any], load: float) -> list[Row]:
    """The /assets cases against the plain page; the API against it too (≤ 1x); the dashboard
    and /policy reported beside it (the spec sets them no ratio). Each result carries the plain
    page's p95 it was read against (`floor_ms`)."""
    plain = next((r for r in results if r.prefix == "assets page" and r.label == "plain"), None)
    rows = []
    for r in results:
        name = f"{r.prefix.strip()} {r.label}"
        if r is plain:
            rows.append(Row(name, f"p95 {_ms(r.p95_ms)}", "(absolute)", None, "p95 <= 50 ms", load, r.ok))
            continue
        floor = f"plain /assets p95 {_ms(r.floor_ms)}" if r.floor_ms else "-"
        rows.append(Row(name, f"p95 {_ms(r.p95_ms)}", floor, r.ratio,
                        f"<= {r.ratio_target:g}x" if r.ratio_target else "-", load, r.ok,
                        reported_only=r.ratio_target is None))
    return rows


def concurrency_row(result: Any, load: float) -> list[Row]:
    name = result.label if result.database in result.label else f"{result.label} ({result.database})"
    product = (f"{result.product.pages_per_s:,.1f} pages/s, p95 {_ms(result.product.p95_ms)}, "
               f"{result.product.errors} errors")
    floor = (f"bare Flask+Jinja page {result.floor.pages_per_s:,.1f} pages/s, "
             f"p95 {_ms(result.floor.p95_ms)}")
    return [Row(name + " pages/s", product, floor, result.rate_ratio, ">= 0.6x", load,
                result.rate_ratio >= 0.6 and result.product.errors == 0,
                reported_only=result.database != "PostgreSQL"),
            Row(name + " p95", f"p95 {_ms(result.product.p95_ms)}", f"p95 {_ms(result.floor.p95_ms)}",
                result.p95_ratio, "<= 2x", load, result.p95_ratio <= 2.0,
                reported_only=result.database != "PostgreSQL")]


def ratio_row(name: str, product_s: float, floor_name: str, floor_s: float, ratio: float,
              target: float, load: float, ok: bool) -> Row:
    return Row(name, _s(product_s), f"{floor_name} {_s(floor_s)}", ratio, f"<= {target:g}x", load, ok)


def result_row(result: Any, load: float) -> Row:
    """A workload result that names its own floor: `label`, `product_s`, `floor_name`, `floor_s`,
    `ratio`, `ok`, and `target` (a ratio) or `target_text` when the target is not one ratio."""
    rows_target = getattr(result, "rows_target", None)
    if rows_target is not None:  # the identical re-import: judged by the rows it writes
        return Row(result.label, f"{_s(result.product_s)}, {result.rows_written:,} rows written",
                   f"{result.floor_name} {_s(result.floor_s)} (for scale)", None,
                   f"{rows_target} rows written", load, result.ok)
    target = getattr(result, "target_text", None) or (
        f"<= {result.target:g}x" if getattr(result, "target", None) is not None else "-")
    ratio = result.ratio if result.floor_s else None
    return Row(result.label, _s(result.product_s) + getattr(result, "product_note", ""),
               f"{result.floor_name} {_s(result.floor_s)}" if result.floor_s else result.floor_name,
               ratio, target, load, result.ok)


def matching_rows(results: list[Any], load: float) -> list[Row]:
    """Matching's dry runs beside parsing the same file: the full size carries the targets
    (linear in records, peak RSS <= 600 MB); the smaller sizes are how linearity is read."""
    rows = []
    for r in results:
        full = r is results[-1]
        growth = f", x{r.growth:.2f} per record vs N/4" if full and r.growth is not None else ""
        rows.append(Row(f"{r.label} against the inventory",
                        f"{_s(r.product_s)} ({r.per_record_us:,.0f} us/record, peak RSS {r.peak_mb:,.0f} MB{growth})",
                        f"{r.floor_name} {_s(r.floor_s)}", r.ratio,
                        "linear; peak RSS <= 600 MB" if full else "-", load, r.ok, reported_only=not full))
    return rows


def graph_rows(report: Any, plain_p95_ms: float | None, load: float) -> list[Row]:
    """The graph's timed cases against the plain /assets page (SPEC §11: p95 <= 1x it)."""
    rows = []
    for r in report.results:
        if r.target_ms is None:
            continue
        ratio = r.p95_ms / plain_p95_ms if plain_p95_ms else None
        ok = r.ok if ratio is None else (ratio <= 1.0 and not r.wrong and r.expectation_met and r.n > 0)
        rows.append(Row(f"graph {r.label}", f"p95 {_ms(r.p95_ms)} ({r.truncated}/{r.n} truncated)",
                        f"plain /assets p95 {_ms(plain_p95_ms)}" if plain_p95_ms else "-",
                        ratio, "<= 1x", load, ok))
    return rows


def table(rows: list[Row]) -> str:
    head = ("workload", "product", "floor (same run)", "ratio", "target", "load", "verdict")
    body = [(r.workload, r.product, r.floor, "-" if r.ratio is None else f"{r.ratio:.2f}x", r.target,
             f"{r.load:.1f}", r.verdict) for r in rows]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def as_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [asdict(r) | {"verdict": r.verdict} for r in rows]
