"""Workload: `/assets` under 50 concurrent closed-loop clients, against its floor (SPEC §11).

Both sides run under gunicorn with the same settings (`webapp/gunicorn_conf.py`, sync workers,
two per core, on 127.0.0.1) and are driven by the same wrk (Debian package `wrk`): 50
connections, each sending its next request when the previous answer arrived, for a bounded time
and at most MAX_REQUESTS requests per wrk thread. The embedded default (`bench/embedded.py`) is
measured the same way on a SQLite file, both sides served as `make run` serves the app (the
config file's defaults: one gthread worker of WEB_THREADS threads).

- product: `wsgi:app` on the bench database, signed in as the bench admin (its session cookie);
- floor: `bench/page_floor.py`, a bare Flask + Jinja page running one SQL statement for the same
  50 rows and columns.

Target: product pages/s >= 0.6x the floor's, p95 <= 2x the floor's p95, no errors (a connection
error, a timeout, or any answer but 200).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import data

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 50
DURATION_S = 20
WARM_UP_S = 3
MAX_REQUESTS = 100_000  # per wrk thread: a bound on requests besides the time
WRK_THREADS = 2
USER_AGENT = "inventory-bench"
TARGET_RATE_RATIO = 0.6
TARGET_P95_RATIO = 2.0

# wrk's Lua hooks: send the cookie, count every answer but 200 as an error, stop a thread past
# MAX_REQUESTS, and print the figures as one JSON line (wrk's own summary has no p95)
WRK_SCRIPT = """
local cookie, max_requests = "%(cookie)s", %(max_requests)d
bad, sent = 0, 0  -- globals: done() reads each thread's `bad` with thread:get
wrk.headers["Cookie"] = cookie
wrk.headers["User-Agent"] = "%(user_agent)s"
function setup(thread) table.insert(threads, thread) end
threads = {}
function request()
  sent = sent + 1
  if sent > max_requests then wrk.thread:stop() end
  return wrk.format(nil)
end
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local bad_total = 0
  for _, t in ipairs(threads) do bad_total = bad_total + (t:get("bad") or 0) end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d, ' ..
    '"not_200": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    bad_total))
end
"""


@dataclass
class Side:
    label: str
    pages_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    errors: int
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    product: Side
    floor: Side
    server: str  # how gunicorn served both sides: "4 sync workers"
    connections: int
    duration_s: int
    load_average: tuple[float, float, float]
    label: str = "/assets under 50 clients"
    database: str = "PostgreSQL"

    @property
    def rate_ratio(self) -> float:
        return self.product.pages_per_s / self.floor.pages_per_s if self.floor.pages_per_s else 0.0

    @property
    def p95_ratio(self) -> float:
        return self.product.p95_ms / self.floor.p95_ms if self.floor.p95_ms else float("inf")

    @property
    def ok(self) -> bool:
        return (self.rate_ratio >= TARGET_RATE_RATIO and self.p95_ratio <= TARGET_P95_RATIO
                and self.product.errors == 0 and self.floor.errors == 0)

    def line(self) -> str:
        load = self.load_average
        return (
            f"concurrency /assets on {self.database} ({self.connections} clients, {self.server}, "
            f"{self.duration_s}s): product {self.product.pages_per_s:.1f} pages/s "
            f"p95={self.product.p95_ms:.0f}ms errors={self.product.errors} | floor "
            f"{self.floor.pages_per_s:.1f} pages/s p95={self.floor.p95_ms:.0f}ms "
            f"errors={self.floor.errors} | ratio pages/s {self.rate_ratio:.2f}x (target >= "
            f"{TARGET_RATE_RATIO}x), p95 {self.p95_ratio:.2f}x (target <= {TARGET_P95_RATIO:.0f}x)"
            f" | load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} "
            + ("OK" if self.ok else "MISS")
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session_cookie(url: str) -> str:
    """The bench admin's session cookie, signed in through the app with the same secret key as
    the gunicorn side (and the same User-Agent, so session protection keeps it fresh)."""
    from webapp import create_app

    app = create_app(data.app_config(url))
    client = app.test_client()
    response = client.post("/login", data={"email": data.ADMIN_EMAIL,
                                           "password": data.ADMIN_PASSWORD},
                           headers={"User-Agent": USER_AGENT})
    if response.status_code != 302:
        raise SystemExit(f"bench sign-in failed: HTTP {response.status_code}")
    # a first page, as a browser's: the session then holds its CSRF token, so no answer under
    # load has to write a new cookie (wrk, unlike a browser, never stores one)
    client.get("/assets", headers={"User-Agent": USER_AGENT})
    cookie = client.get_cookie("session")
    if cookie is None:
        raise SystemExit("bench sign-in set no session cookie")
    return f"session={cookie.value}"


def _environment(url: str) -> dict[str, str]:
    config = data.app_config(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN", "FLASK"))}
    env.update({
        "DATABASE_URL": url,
        "BENCH_DATABASE_URL": url,
        "SECRET_KEY": config["SECRET_KEY"],
        "INVENTORY_ENCRYPTION_KEYS": ",".join(config["INVENTORY_ENCRYPTION_KEYS"]),
        "INVENTORY_ENV": "production",
        "SESSION_COOKIE_SECURE": "false",  # plain HTTP on 127.0.0.1
        "SCHEDULER_THREAD": "false",  # no background work beside the measured requests
        "REDIS_URL": "",
        "PYTHONPATH": str(ROOT),
    })
    return env


class Server:
    """gunicorn serving `app_path` on a free 127.0.0.1 port until the block ends."""

    def __init__(self, app_path: str, url: str, options: list[str], log: Path) -> None:
        self.port = _free_port()
        self.app_path, self.url, self.options, self.log = app_path, url, options, log
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(gunicorn), "-c", "python:webapp.gunicorn_conf", *self.options, "--bind",
                 f"127.0.0.1:{self.port}", "--no-control-socket", self.app_path],
                cwd=ROOT, env=_environment(self.url), stdout=log, stderr=log,
            )
        return self

    def wait(self, path: str, cookie: str | None, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                         headers={"User-Agent": USER_AGENT,
                                                  **({"Cookie": cookie} if cookie else {})})
        while True:
            try:
                with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                    if response.status == 200 and response.url.endswith(path):
                        return
                    raise SystemExit(f"{self.app_path} {path}: HTTP {response.status} "
                                     f"at {response.url}")
            except (urllib.error.URLError, ConnectionError):
                if self.process is not None and self.process.poll() is not None:
                    raise SystemExit(f"gunicorn {self.app_path} exited; see {self.log}") from None
                if time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn {self.app_path} did not answer; see {self.log}"
                                     ) from None
                time.sleep(0.3)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wrk(port: int, path: str, cookie: str, seconds: int, connections: int, script_dir: Path
        ) -> dict[str, Any]:
    script = script_dir / "bench.lua"
    script.write_text(WRK_SCRIPT % {"cookie": cookie, "max_requests": MAX_REQUESTS,
                                    "user_agent": USER_AGENT})
    completed = subprocess.run(
        ["wrk", "-t", str(WRK_THREADS), "-c", str(connections), "-d", f"{seconds}s",
         "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, timeout=seconds + 60, check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed ({completed.returncode}): {completed.stderr or completed.stdout}")
    return json.loads(lines[-1])


def measure(label: str, app_path: str, path: str, url: str, cookie: str | None,
            options: list[str], seconds: int, connections: int, tmp: Path) -> Side:
    with Server(app_path, url, options, tmp / f"{label}.log") as server:
        server.wait(path, cookie)
        wrk(server.port, path, cookie or "", WARM_UP_S, connections, tmp)  # every worker warm
        figures = wrk(server.port, path, cookie or "", seconds, connections, tmp)
    errors = sum(figures[k] for k in ("connect", "read", "write", "timeout", "not_200"))
    return Side(
        label=label,
        pages_per_s=figures["requests"] / (figures["duration_us"] / 1e6),
        p50_ms=figures["p50_us"] / 1000,
        p95_ms=figures["p95_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        requests=figures["requests"],
        errors=errors,
        detail=figures,
    )


def embedded_server(url: str) -> str:
    """What `make run`'s gunicorn settings give on this database (webapp/gunicorn_conf.py)."""
    from webapp.config import Config

    config = Config(_environment(url))
    processes = "worker" if config.WEB_WORKERS == 1 else "workers"
    return f"{config.WEB_WORKERS} gthread {processes} x {config.WEB_THREADS} threads"


def run(url: str, *, seconds: int = DURATION_S, connections: int = CONNECTIONS,
        workers: int | None = None, embedded: bool = False) -> Result:
    """Measure the floor, then the product, in the same run; print and return the figures.

    `embedded`: both served with the config file's settings, as `make run` serves the app (on
    the embedded default, a SQLite file), instead of `workers` sync workers."""
    if shutil.which("wrk") is None:
        raise SystemExit("the concurrency workload needs wrk: apt-get install wrk "
                         "(or pass --skip-concurrency)")
    if embedded:
        options: list[str] = []
        server = embedded_server(url)
    else:
        workers = workers or 2 * (os.cpu_count() or 1)
        # --threads 1: with the config file's threads gunicorn would turn "sync" into gthread
        options = ["--workers", str(workers), "--worker-class", "sync", "--threads", "1"]
        server = f"{workers} sync workers"
    database = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    cookie = session_cookie(url)
    print(f"\nconcurrency on {database}: gunicorn, {server}, wrk {connections} connections for "
          f"{seconds}s each (after {WARM_UP_S}s of warm-up), floor then product", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-concurrency-"))  # kept: gunicorn's logs
    floor = measure("floor", "bench.page_floor:app", "/", url, None, options, seconds,
                    connections, tmp)
    print(f"  floor:   {floor.pages_per_s:.1f} pages/s p50={floor.p50_ms:.0f}ms "
          f"p95={floor.p95_ms:.0f}ms p99={floor.p99_ms:.0f}ms n={floor.requests} "
          f"errors={floor.errors}", flush=True)
    product = measure("product", "wsgi:app", "/assets", url, cookie, options, seconds,
                      connections, tmp)
    print(f"  product: {product.pages_per_s:.1f} pages/s p50={product.p50_ms:.0f}ms "
          f"p95={product.p95_ms:.0f}ms p99={product.p99_ms:.0f}ms n={product.requests} "
          f"errors={product.errors}", flush=True)
    result = Result(product, floor, server, connections, seconds, os.getloadavg(),
                    label=f"/assets under {connections} clients on {database}", database=database)
    print(result.line(), flush=True)
    return result


if __name__ == "__main__":  # a run of this workload alone, on an already built bench database
    run(os.environ.get("BENCH_DATABASE_URL") or data.DEFAULT_URL,
        seconds=int(sys.argv[1]) if len(sys.argv) > 1 else DURATION_S)
