"""`make bench` (BENCH_ARGS="--quick" for a smoke run): build data, run workloads, print figures.

    .venv/bin/python -m bench.run [--assets N] [--import-assets N] [--requests N] [--quick]
        [--rebuild] [--explain] [--skip-pages] [--skip-exports] [--skip-bulk] [--skip-imports]
        [--skip-matching] [--skip-graph] [--skip-policy] [--skip-dump] [--skip-audit]
        [--skip-concurrency] [--skip-embedded]

Every workload of SPEC §11 prints a line with the product's figure, the floor measured beside it
in the same run, the ratio and the target; the run ends with one table of them all (product,
floor, ratio, target, load average, verdict), and writes everything as JSON to BENCH_OUT (default
bench/results/bench-<time>.json).

The databases are built once and reused while they hold the wanted number of rows (--rebuild
builds again):
- BENCH_DATABASE_URL (default inventory_bench_1m; inventory_bench_quick with --quick), of
  --assets assets (1,000,000; 5,000 with --quick): the pages, the API, the 50-client load,
  exports, matching, the graph (its relationships added once), policy, and dump/load;
- BENCH_IMPORT_DATABASE_URL (default inventory_bench; inventory_bench_quick_imports), of
  --import-assets assets (100,000; 5,000): the imports (rebuilt before each format) and the bulk
  action; the 50-client load on the embedded default uses a SQLite file of as many
  (BENCH_SQLITE_URL, default instance/inventory_bench.db), served as `make run` serves it;
- BENCH_AUDIT_DATABASE_URL (default inventory_bench_audit; inventory_bench_quick_audit), of
  --audit-events events (10,000,000; 200,000): `audit verify`, and one asset's History and audit
  API among them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from bench import (
    audit_verify,
    bulk,
    concurrency,
    data,
    embedded,
    exports,
    graph,
    history,
    imports,
    matching,
    pages,
    policy,
    summary,
    verify,
)
from bench import dump as dump_bench

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--assets", type=int, help="assets of the pages database (default 1000000; 5000 with --quick)"
    )
    parser.add_argument(
        "--import-assets", type=int,
        help="assets the imports meet, and of the bulk action (default 100000; 5000 with --quick)",
    )
    parser.add_argument(
        "--requests", type=int, help="timed requests per case (default 100; 20 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: small data, few requests")
    parser.add_argument(
        "--rebuild", action="store_true", help="rebuild the data even if the row count matches"
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print EXPLAIN (ANALYZE, BUFFERS) of every assets query the page issues",
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip checking the list's fast paths against the plain queries",
    )
    parser.add_argument("--skip-pages", action="store_true", help="skip the page and API workloads")
    parser.add_argument("--skip-exports", action="store_true",
                        help="skip the export workload (CSV and JSON of every asset vs COPY)")
    parser.add_argument("--skip-bulk", action="store_true",
                        help="skip the bulk action workload (set owner on every asset, then undo)")
    parser.add_argument("--skip-imports", action="store_true", help="skip the import workloads")
    parser.add_argument("--skip-matching", action="store_true", help="skip the matching workload")
    parser.add_argument("--skip-graph", action="store_true", help="skip the graph workload")
    parser.add_argument("--skip-policy", action="store_true",
                        help="skip the policy workload (every control over the graph workload's "
                        "assets, against the same predicates as one SQL statement)")
    parser.add_argument("--skip-dump", action="store_true",
                        help="skip the dump and load workload (flask dump / load of the bench database "
                        "vs COPY TO / COPY FROM of the same tables)")
    parser.add_argument("--skip-audit", action="store_true",
                        help="skip the audit verify workload (its own database, BENCH_AUDIT_DATABASE_URL)")
    parser.add_argument("--skip-concurrency", action="store_true",
                        help="skip the 50-client /assets workload (gunicorn + wrk, against a bare "
                        "Flask + Jinja page of the same rows)")
    parser.add_argument("--skip-embedded", action="store_true",
                        help="skip the 50-client workload on the embedded default (a SQLite file "
                        "of the same assets, gunicorn as `make run` starts it)")
    parser.add_argument("--concurrency-seconds", type=int,
                        help="seconds of wrk per side of the 50-client workload (default 20; 5 "
                        "with --quick)")
    parser.add_argument("--audit-events", type=int,
                        help="events of the audit verify workload (default 10000000; 200000 with --quick)")
    parser.add_argument(
        "--matching-assets", type=int,
        help="assets the matching workload meets (default: --assets, in the pages database; a "
        "different number needs BENCH_MATCHING_DATABASE_URL)",
    )
    parser.add_argument(
        "--matching-records", type=int,
        help="records matched at full size (default 100000; 4000 with --quick)",
    )
    parser.add_argument(
        "--import-records", type=int,
        help="discovered records per import file (default 100000; 5000 with --quick)",
    )
    parser.add_argument(
        "--graph-relationships", type=int,
        help="relationships of the graph workload, over the matching workload's assets "
        "(default 1000000; 20000 with --quick)",
    )
    parser.add_argument(
        "--graph-requests", type=int,
        help="random start assets of the graph workload (default 400; 40 with --quick)",
    )
    parser.add_argument("--verbose", action="store_true", help="also print each URL's p50 and max")
    parser.add_argument("--no-json", action="store_true", help="do not write bench/results/*.json")
    args = parser.parse_args(argv)
    args.assets = args.assets or (5_000 if args.quick else 1_000_000)
    args.import_assets = args.import_assets or (5_000 if args.quick else 100_000)
    args.requests = args.requests or (20 if args.quick else 100)
    args.import_records = args.import_records or (5_000 if args.quick else 100_000)
    args.matching_assets = args.matching_assets or args.assets
    if args.matching_assets != args.assets and not os.environ.get("BENCH_MATCHING_DATABASE_URL"):
        parser.error("--matching-assets other than --assets needs BENCH_MATCHING_DATABASE_URL")
    args.matching_records = args.matching_records or (4_000 if args.quick else 100_000)
    args.graph_relationships = args.graph_relationships or (20_000 if args.quick else 1_000_000)
    args.graph_requests = args.graph_requests or (40 if args.quick else 400)
    args.audit_events = args.audit_events or (200_000 if args.quick else 10_000_000)
    args.concurrency_seconds = args.concurrency_seconds or (5 if args.quick else 20)
    if not 1 <= args.concurrency_seconds <= 600:
        parser.error("--concurrency-seconds must be between 1 and 600")
    if not 1 <= args.assets <= 5_000_000:
        parser.error("--assets must be between 1 and 5,000,000")
    if not 1 <= args.requests <= 10_000:
        parser.error("--requests must be between 1 and 10,000")
    if not 1_000 <= args.graph_relationships <= 5 * args.matching_assets:
        parser.error("--graph-relationships must be between 1,000 and 5 x --matching-assets")
    if not 10 <= args.graph_requests <= 10_000:
        parser.error("--graph-requests must be between 10 and 10,000")
    return args


def prepare(url: str, n: int, rebuild: bool):  # type: ignore[no-untyped-def]
    """Create, migrate and fill the database; return (app, build report)."""
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db

    created = data.ensure_database(url)
    app = create_app(data.app_config(url))
    t0 = time.perf_counter()
    with app.app_context():
        upgrade()
        db.engine.dispose()
    migrate_s = time.perf_counter() - t0

    existing = data.asset_count(url)
    build_s = None
    links = None
    phases: dict[str, float] = {}
    if rebuild or existing != n:
        t0 = time.perf_counter()
        generated = data.load(url, n)
        build_s = time.perf_counter() - t0
        links = generated.tag_links
        phases = generated.phases
    t0 = time.perf_counter()
    ensure_admin(app)
    admin_s = time.perf_counter() - t0
    checked = check_search_text(app)
    return app, {
        "database_created": created,
        "migrate_s": migrate_s,
        "rows_before": existing,
        "build_s": build_s,
        "build_phases": phases,
        "tag_links": links,
        "admin_s": admin_s,
        "search_text_checked": checked,
    }


def ensure_admin(app) -> None:  # type: ignore[no-untyped-def]
    from webapp.extensions import db
    from webapp.models import User
    from webapp.services import auth
    from webapp.services.actor import Actor

    with app.app_context():
        if db.session.scalar(select(User.id).where(User.email == data.ADMIN_EMAIL)) is None:
            auth.create_user(
                db.session,
                Actor.cli("bench"),
                email=data.ADMIN_EMAIL,
                password=data.ADMIN_PASSWORD,
                role="admin",
                name="Bench admin",
            )
        db.session.remove()


def check_search_text(app, sample: int = 300) -> int:  # type: ignore[no-untyped-def]
    """The stored search_text must be what the service layer computes; compare a random sample."""
    from webapp.extensions import db
    from webapp.models import Asset
    from webapp.services.assets import search_text

    with app.app_context():
        assets = db.session.scalars(select(Asset).order_by(func.random()).limit(sample)).all()
        wrong = [a for a in assets if search_text(a) != a.search_text]
        db.session.remove()
    if wrong:
        a = wrong[0]
        raise SystemExit(
            f"bench data is wrong: search_text of {a.id} is {a.search_text!r}, "
            f"the service computes {search_text(a)!r}"
        )
    return len(assets)


def api_token(app) -> str:  # type: ignore[no-untyped-def]
    """A fresh read-only token of the bench admin, for the API workload."""
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import User
    from webapp.services import tokens
    from webapp.services.actor import Actor

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == data.ADMIN_EMAIL))
        _token, secret = tokens.create(
            db.session, Actor.system("bench"), user, name="bench", read_only=True
        )
        db.session.remove()
    return secret


def run_pages(app, args):  # type: ignore[no-untyped-def]
    """The page and API workloads: (results, search-term counts), or None on a mismatch."""
    from webapp.extensions import db
    from webapp.services import policy_results

    with app.app_context():  # the policy filters' cases need every asset's stored results
        t0 = time.perf_counter()
        written = policy_results.evaluate_missing(db.session)
        db.session.remove()
    if written:
        print(f"policy results: {written:,} written for assets that had none, in "
              f"{time.perf_counter() - t0:.1f}s")
    client = app.test_client()
    pages.sign_in(client, data.ADMIN_EMAIL, data.ADMIN_PASSWORD)
    cases = (pages.build_cases(app, client) + pages.build_summary_cases(app)
             + pages.build_api_cases(app, client, api_token(app)))
    counts = pages.match_counts(app)
    print(
        "search terms (live rows matched): " + ", ".join(f"{t!r}={c:,}" for t, c in counts.items())
    )

    if not args.no_verify:
        checked, problems = verify.verify(app, pages.SEARCH_TERMS, ["pci", "hipaa", "no-such-tag"])
        if problems:
            print("verify: MISMATCH\n  " + "\n  ".join(problems))
            return None
        print(
            f"verify: {checked} pages (searched and tagged, 4 sorts, forward and back) and their "
            "counts equal the plain queries'"
        )

    pages.warm_up(client, cases, rounds=2)
    results = []
    print()
    plain = None
    for case in cases:
        result = pages.run_case(app, client, case, args.requests)
        if plain is None and result.prefix == "assets page" and result.label == "plain":
            plain = result
        elif plain is not None:  # the plain page runs first: every other case is read against it
            result.floor_ms = plain.p95_ms
        results.append(result)
        print(result.line(), flush=True)
        if args.verbose and len(result.by_url) > 1:
            for page_url, (n, p50, worst) in result.by_url.items():
                print(f"    {page_url:<70} n={n:<4.0f} p50={p50:.1f}ms max={worst:.1f}ms")

    if args.explain:
        pages.explain(app, client, cases, sys.stdout)
    return results, counts


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/"


def database_urls(args: argparse.Namespace) -> dict[str, str]:
    """Each workload's database; --quick uses databases of its own, so a smoke run never shrinks
    the full-size data that took long to build."""
    env = os.environ.get
    quick = "_quick" if args.quick else ""
    pages_url = env("BENCH_DATABASE_URL") or POSTGRES + ("inventory_bench_quick" if args.quick
                                                         else "inventory_bench_1m")
    return {
        "pages": pages_url,
        "imports": env("BENCH_IMPORT_DATABASE_URL") or POSTGRES + f"inventory_bench{quick}"
        + ("_imports" if args.quick else ""),
        "matching": env("BENCH_MATCHING_DATABASE_URL") or pages_url,
        "graph": env("BENCH_GRAPH_DATABASE_URL") or env("BENCH_MATCHING_DATABASE_URL") or pages_url,
        "audit": env("BENCH_AUDIT_DATABASE_URL") or POSTGRES + f"inventory_bench{quick}_audit",
        "sqlite": env("BENCH_SQLITE_URL") or f"sqlite:///{RESULTS_DIR.parent.parent / 'instance' / f'inventory_bench{quick}.db'}",
    }


def report_build(build: dict, rows: int) -> None:  # type: ignore[type-arg]
    if build["build_s"] is None:
        print(f"data: {rows:,} assets already present, reused (migrate {build['migrate_s']:.1f}s)")
    else:
        print(
            f"data: built {rows:,} assets + {build['tag_links']:,} tag links in "
            f"{build['build_s']:.1f}s ("
            + ", ".join(f"{k} {v:.1f}s" for k, v in build["build_phases"].items())
            + f"; {rows / build['build_s']:,.0f} rows/s)"
        )
    print(f"data: search_text checked on {build['search_text_checked']} random assets: identical")


def main(argv: list[str] | None = None) -> int:  # noqa: C901 (one workload after another)
    args = parse_args(argv)
    urls = database_urls(args)
    url = urls["pages"]
    os.environ.setdefault("BENCH_SQLITE_URL", urls["sqlite"])
    started = time.perf_counter()
    print(
        f"bench database: {url.split('@')[-1]}  (assets wanted: {args.assets:,}, "
        f"requests per case: {args.requests})",
        flush=True,
    )

    app, build = prepare(url, args.assets, args.rebuild)
    rows = data.asset_count(url)
    report_build(build, rows)

    table: list[summary.Row] = []
    results = []
    counts: dict[str, int] = {}
    if not args.skip_pages:
        outcome = run_pages(app, args)
        if outcome is None:
            return 2
        results, counts = outcome
        table += summary.page_rows(results, summary.load_now())
    plain = next((r for r in results if r.prefix == "assets page" and r.label == "plain"), None)
    plain_p95 = plain.p95_ms if plain else None

    concurrency_result = None
    if not args.skip_concurrency:
        concurrency_result = concurrency.run(url, seconds=args.concurrency_seconds)
        table += summary.concurrency_row(concurrency_result, summary.load_now())
    # the same load on the embedded default, its line beside PostgreSQL's (SPEC §11 sets the
    # targets on PostgreSQL: this one is reported, not one of them)
    embedded_result = None
    if not (args.skip_concurrency or args.skip_embedded):
        embedded_result = embedded.run(args.import_assets, seconds=args.concurrency_seconds)
        table += summary.concurrency_row(embedded_result, summary.load_now())

    export_results = [] if args.skip_exports else exports.run(url)
    table += [summary.ratio_row(f"export {r.rows:,} assets, {r.label}", r.net_s, "COPY TO STDOUT",
                                r.floor_s, r.ratio, exports.TARGET_RATIO, summary.load_now(), r.ok)
              for r in export_results]

    bulk_result = None
    if not args.skip_bulk:
        import_app, import_build = prepare(urls["imports"], args.import_assets, False)
        bulk_rows = data.asset_count(urls["imports"])
        print(f"\nbulk action: one change set over the {bulk_rows:,} assets of "
              f"{urls['imports'].split('/')[-1]}, against the write floor", flush=True)
        bulk_result = bulk.run(import_app)
        print(bulk_result.line(), flush=True)
        table.append(summary.ratio_row(bulk_result.label, bulk_result.product_s, "write floor",
                                       bulk_result.floor_s, bulk_result.ratio, bulk.TARGET_RATIO,
                                       summary.load_now(), bulk_result.ok))

    import_results = []
    if not args.skip_imports:
        print("\nimports: each format meets a freshly rebuilt inventory of "
              f"{args.import_assets:,} assets", flush=True)

        def rebuild(db_url: str, n: int) -> None:
            generated = data.load(db_url, n)
            print(f"  (inventory rebuilt: {generated.assets:,} assets)", flush=True)

        data.ensure_database(urls["imports"])
        import_results = imports.run(urls["imports"], args.import_assets, args.import_records, rebuild)
        table += [summary.result_row(r, summary.load_now()) for r in import_results]

    matching_results = []
    if not args.skip_matching:
        matching_results = matching.run(urls["matching"], args.matching_assets, args.matching_records)
        table += summary.matching_rows(matching_results, summary.load_now())

    graph_report = None
    if not args.skip_graph:
        graph_report = graph.run(
            urls["graph"], args.matching_assets, args.graph_relationships, args.graph_requests,
            explain=args.explain, verbose=args.verbose, plain_p95_ms=plain_p95,
        )
        table += summary.graph_rows(graph_report, plain_p95, summary.load_now())

    policy_result = None
    if not args.skip_policy:
        policy_result = policy.run(urls["graph"], args.matching_assets)
        table.append(summary.ratio_row(policy_result.label, policy_result.product_s, "one SQL statement",
                                       policy_result.floor_s, policy_result.ratio, policy.TARGET_RATIO,
                                       summary.load_now(), policy_result.ok))

    dump_results = [] if args.skip_dump else dump_bench.run(url)
    table += [summary.ratio_row(f"{r.label} {r.rows:,} rows", r.net_s, "COPY", r.floor_s, r.ratio,
                                dump_bench.TARGET_RATIO, summary.load_now(), r.ok) for r in dump_results]

    audit_result = None
    history_results = []
    if not args.skip_audit:
        audit_result = audit_verify.run(urls["audit"], args.audit_events)
        table.append(summary.ratio_row(f"audit verify {audit_result.events:,} events", audit_result.seconds,
                                       "sha256 of the canonical JSON, tight loop", audit_result.floor_s,
                                       audit_result.ratio, audit_verify.TARGET_RATIO, summary.load_now(),
                                       audit_result.ok))
        print(f"\nhistory among {audit_result.events:,} audit events, against the plain /assets page",
              flush=True)
        history_results = history.run(urls["audit"], plain_p95, args.requests)
        table += summary.page_rows(history_results, summary.load_now())

    total_s = time.perf_counter() - started
    load = os.getloadavg()
    misses = [r.workload for r in table if not r.ok and not r.reported_only]
    if graph_report is not None:
        misses += [m for m in graph_report.misses if m.startswith("graph plan")]
    print(f"\nSPEC §11, one run ({rows:,} assets; {os.cpu_count()} CPUs; total {total_s / 60:.1f} min; "
          f"load average at the end {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}):\n")
    print(summary.table(table))
    print("\n" + ("all figures OK" if not misses else f"MISSED: {', '.join(misses)}"))

    if not args.no_json:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = Path(os.environ.get("BENCH_OUT") or RESULTS_DIR / f"bench-{stamp}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "when": stamp,
                    "databases": {k: v.split("@")[-1] for k, v in urls.items()},
                    "rows": rows,
                    "build": build,
                    "requests_per_case": args.requests,
                    "search_term_matches": counts,
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "load_average": load,
                    "summary": summary.as_json(table),
                    "results": [asdict(r) for r in results],
                    "history": [asdict(r) for r in history_results],
                    "imports": [asdict(r) for r in import_results],
                    "exports": [asdict(r) | {"net_s": r.net_s, "ratio": r.ratio}
                                for r in export_results],
                    "bulk": (asdict(bulk_result) | {"ratio": bulk_result.ratio}
                             if bulk_result is not None else None),
                    "matching": [asdict(r) | {"ratio": r.ratio, "ok": r.ok, "per_record_us": r.per_record_us}
                                 for r in matching_results],
                    "graph": asdict(graph_report) if graph_report is not None else None,
                    "policy": asdict(policy_result) if policy_result is not None else None,
                    "concurrency": (asdict(concurrency_result)
                                    | {"rate_ratio": concurrency_result.rate_ratio,
                                       "p95_ratio": concurrency_result.p95_ratio}
                                    if concurrency_result is not None else None),
                    "concurrency_embedded": (asdict(embedded_result)
                                             | {"rate_ratio": embedded_result.rate_ratio,
                                                "p95_ratio": embedded_result.p95_ratio}
                                             if embedded_result is not None else None),
                    "audit_verify": (asdict(audit_result) | {"ratio": audit_result.ratio}
                                     if audit_result is not None else None),
                    "dump": [asdict(r) | {"net_s": r.net_s, "ratio": r.ratio} for r in dump_results],
                    "total_s": total_s,
                },
                indent=2,
                default=str,
            )
        )
        print(
            f"results written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}"
        )
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
