"""Scale-out (issue 18): two app servers and three RQ workers on one PostgreSQL, with three
overlapping imports and 20 concurrent editors at once. No duplicate asset, no lost update, the
audit chain intact.

Everything is a real process, started as production starts it: gunicorn with the app's config
(`make run`, the Dockerfile), `flask worker` (RQ), on the test's PostgreSQL database and Redis.
The test talks to them only over HTTP (the JSON API), then reads the database.

- 40 assets exist (an in-process import). Three discovery files, each describing hundreds of
  the same PostgreSQL servers as the others (inventory-json, nmap-xml, csv; 640 endpoints in
  all, 40 of them the existing assets), are uploaded at once through both servers and run on
  the workers at the same time.
- Meanwhile 20 editors (one API token each) edit 28 of those assets through both servers:
  read the asset, then PATCH it with `If-Match`, a counter in `notes` raised by one and an
  `owner` naming the edit. Eight assets are shared by all editors, so edits collide (412); the
  imports change the same assets (412 too). A successful edit is kept only if its counter
  value is the asset's final one or was later raised past by another successful edit: the
  successes on one asset must be exactly 1..N, and the asset must say N and carry the owner
  of edit N.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx
import pytest
from redis import Redis
from rq import Worker
from rq.job import Job
from sqlalchemy import func, select, text

from tests.conftest import TEST_KEY, free_port
from tests.imports.helpers import inventory, run_file
from webapp.config import PROJECT_ROOT
from webapp.jobs import runner
from webapp.models import Asset, Conflict, ConflictKind
from webapp.services import audit

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

SEEDED = 40  # existing assets, hosts 0..39
EDITORS = 20
SHARED = 8  # assets every editor edits (hosts 0..7); each editor also has one of its own (8..27)
FILES = {  # which hosts each discovery file describes (overlapping)
    "inventory.json": [*range(0, SEEDED), *range(100, 400)],
    "scan.xml": [*range(0, SEEDED), *range(250, 600)],
    "cmdb.csv": [*range(0, SEEDED), *range(350, 700)],
}
ENDPOINTS = len({h for hosts in FILES.values() for h in hosts})
BATCH_SIZE = 50  # records per committed import batch: many batches, interleaved across runs
MIN_EDITS = 5  # successful edits each editor makes at least
DEADLINE_S = 75  # for the imports and the editors together


def _fqdn(n: int) -> str:
    return f"pg-{n:03}.scale.example.com"


def _inventory_file(hosts: list[int]) -> bytes:
    return json.dumps({"source": "cmdb-json", "assets": [
        {"name": f"scale-{n:03}", "engine": "postgresql", "engine_version": "16.1",
         "host": _fqdn(n), "port": 5432, "database_name": f"app{n}", "environment": "staging",
         "owner": f"team-{n % 7}@example.com", "tags": [f"scale-{n % 3}"]}
        for n in hosts
    ]}).encode()


def _nmap_file(hosts: list[int]) -> bytes:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE nmaprun>\n',
        '<nmaprun scanner="nmap" args="nmap -sV -oX scan.xml 10.77.0.0/22" start="1710234842" '
        'version="7.94SVN" xmloutputversion="1.05">\n',
    ]
    for n in hosts:
        lines.append(
            f'<host><status state="up" reason="syn-ack"/><address addr="10.77.{n // 256}.{n % 256}" '
            f'addrtype="ipv4"/><hostnames><hostname name="{escape(_fqdn(n))}" type="PTR"/></hostnames>'
            '<ports><port protocol="tcp" portid="5432"><state state="open" reason="syn-ack"/>'
            '<service name="postgresql" product="PostgreSQL DB" version="16.1.3" method="probed" '
            'conf="10"/></port></ports></host>\n')
    lines.append('<runstats><finished time="1710234900" exit="success"/></runstats></nmaprun>\n')
    return "".join(lines).encode()


def _csv_file(hosts: list[int]) -> bytes:
    rows = ["name,engine,version,host,port,database,env,owner,criticality"]
    rows += [f"scale-{n:03},PostgreSQL,16.1,{_fqdn(n)},5432,app{n},staging,dba-{n % 5}@example.com,low"
             for n in hosts]
    return ("\r\n".join(rows) + "\r\n").encode()


BUILDERS = {"inventory.json": _inventory_file, "scan.xml": _nmap_file, "cmdb.csv": _csv_file}


# --- the processes --------------------------------------------------------------------------------

def _environment(database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GUNICORN", "FLASK", "WEB_", "IMPORT_", "PYTEST"))}
    env.update({
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "scale-out-test",
        "INVENTORY_ENCRYPTION_KEYS": TEST_KEY,
        "INVENTORY_ENV": "production",
        "SESSION_COOKIE_SECURE": "false",  # plain HTTP on 127.0.0.1
        "WEB_WORKERS": "1",  # per server: two servers, and this machine has two cores
        "IMPORT_BATCH_SIZE": str(BATCH_SIZE),
        "COUNTS_CACHE_SECONDS": "0",
        "PYTHONPATH": str(PROJECT_ROOT),
    })
    return env


@dataclass
class Process:
    label: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        return f"--- {self.label} ---\n" + self.log.read_text(errors="replace")[-3000:]


def _start(label: str, command: list[str], env: dict[str, str], logs: Path) -> Process:
    log = logs / f"{label}.log"
    with log.open("wb") as out:
        # a session of its own: RQ forks a work horse per job, and the group is stopped together
        popen = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out,
                                 start_new_session=True)
    return Process(label, popen, log)


def _stop(processes: list[Process]) -> None:
    for process in processes:
        if process.popen.poll() is None:
            os.killpg(process.popen.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.popen.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.popen.pid, signal.SIGKILL)
            process.popen.wait(10)


def _wait_ready(base: str, server: Process, deadline: float) -> None:
    while time.monotonic() < deadline:
        assert server.popen.poll() is None, server.tail()
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{server.label} never became ready\n{server.tail()}")


def _wait_workers(redis: Redis, before: set[str], workers: list[Process], deadline: float) -> None:
    while time.monotonic() < deadline:
        for worker in workers:
            assert worker.popen.poll() is None, worker.tail()
        if len({w.name for w in Worker.all(connection=redis)} - before) >= len(workers):
            return
        time.sleep(0.2)
    raise AssertionError("the RQ workers never registered\n" + "\n".join(w.tail() for w in workers))


# --- the editors ----------------------------------------------------------------------------------

@dataclass
class Edit:
    asset_id: str
    count: int
    owner: str


@dataclass
class Editor:
    number: int
    token: str
    assets: list[str]
    edits: list[Edit] = field(default_factory=list)
    stale: int = 0
    errors: list[str] = field(default_factory=list)

    def run(self, bases: list[str], stop: threading.Event, deadline: float) -> None:
        rng = random.Random(self.number)
        headers = {"Authorization": f"Bearer {self.token}"}
        # gunicorn closes a connection idle for 2 s (`keepalive`); one the client still thought
        # open would be a request sent into a closing socket. Drop idle ones after 1 s instead
        limits = httpx.Limits(keepalive_expiry=1.0)
        with httpx.Client(headers=headers, timeout=30, limits=limits) as client:
            turn = self.number
            while time.monotonic() < deadline and not (stop.is_set() and len(self.edits) >= MIN_EDITS):
                turn += 1
                asset_id = rng.choice(self.assets)
                try:
                    self._edit(client, bases[turn % 2], bases[(turn + 1) % 2], asset_id)
                except httpx.HTTPError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                if len(self.errors) > 5:
                    return

    def _edit(self, client: httpx.Client, read_from: str, write_to: str, asset_id: str) -> None:
        """Read on one server, write on the other: a counter raised by one."""
        read = client.get(f"{read_from}/api/v1/assets/{asset_id}")
        if read.status_code != 200:
            self.errors.append(f"GET {read.status_code}: {read.text[:300]}")
            return
        notes = read.json()["notes"] or "count=0"
        count = int(notes.removeprefix("count=")) + 1
        owner = f"editor-{self.number}-{count}@example.com"
        write = client.patch(f"{write_to}/api/v1/assets/{asset_id}",
                             headers={"If-Match": read.headers["ETag"]},
                             json={"notes": f"count={count}", "owner": owner})
        if write.status_code == 200:
            self.edits.append(Edit(asset_id, count, owner))
        elif write.status_code == 412:
            self.stale += 1
        else:
            self.errors.append(f"PATCH {write.status_code}: {write.text[:300]}")


# --- the test -------------------------------------------------------------------------------------

def _upload(base: str, token: str, name: str, data: bytes) -> str:
    response = httpx.post(f"{base}/api/v1/imports", headers={"Authorization": f"Bearer {token}"},
                          files={"file": (name, data)}, timeout=60)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["runner"] == "rq", body
    return body["id"]


def _duplicates(session) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    """Strong identifier keys (endpoint, cloud id) that more than one live asset holds."""
    return session.execute(text(
        "SELECT i.key, count(*) FROM asset_identifiers i JOIN assets a ON a.id = i.asset_id "
        "WHERE a.deleted_at IS NULL AND a.merged_into IS NULL "
        "AND (i.key LIKE 'ep:%' OR i.key LIKE 'cloud:%') "
        "GROUP BY i.key HAVING count(*) > 1 ORDER BY i.key LIMIT 20")).tuples().all()


@pytest.mark.timeout(180)
def test_two_servers_three_workers_three_imports_and_twenty_editors(
    app, session, make_token, require_postgres, require_redis, tmp_path,
):
    started = time.monotonic()
    seeded = run_file(session, inventory(*[
        {"name": f"scale-{n:03}", "engine": "postgresql", "engine_version": "16.1",
         "host": _fqdn(n), "port": 5432, "database_name": f"app{n}", "environment": "staging",
         "criticality": "low"} for n in range(SEEDED)]), "seed.json", source="seed")
    assert seeded.status.value == "succeeded" and seeded.created == SEEDED
    by_host = dict(session.execute(select(Asset.host, Asset.id)).tuples().all())
    shared = [str(by_host[_fqdn(n)]) for n in range(SEEDED)[:SHARED]]
    editors = [
        Editor(e, make_token("analyst").secret, [*shared, str(by_host[_fqdn(SHARED + e)])])
        for e in range(EDITORS)
    ]
    uploader = make_token("analyst").secret
    files = {name: BUILDERS[name](hosts) for name, hosts in FILES.items()}

    redis = Redis.from_url(require_redis)
    for name in runner.queue_names():  # nothing another test left queued on this Redis database
        runner.queue(name, app).empty()
    registered = {w.name for w in Worker.all(connection=redis)}
    env = _environment(require_postgres, require_redis)
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    ports = [free_port()]
    while len(ports) < 2:
        ports = list(dict.fromkeys([*ports, free_port()]))
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    servers: list[Process] = []
    workers: list[Process] = []
    processes: list[Process] = []
    threads: list[threading.Thread] = []
    stop = threading.Event()
    try:
        for i, port in enumerate(ports):
            servers.append(_start(f"web-{i}", [gunicorn, "-c", "python:webapp.gunicorn_conf", "--bind",
                                               f"127.0.0.1:{port}", "--no-control-socket", "wsgi:app"],
                                  env, tmp_path))
            processes.append(servers[-1])
        for i in range(3):
            workers.append(_start(f"worker-{i}", [sys.executable, "-m", "flask", "--app", "webapp",
                                                  "worker"], env, tmp_path))
            processes.append(workers[-1])
        ready_by = time.monotonic() + 45
        for base, server in zip(bases, servers, strict=True):
            _wait_ready(base, server, ready_by)
        _wait_workers(redis, registered, workers, ready_by)

        deadline = time.monotonic() + DEADLINE_S
        threads = [threading.Thread(target=e.run, args=(bases, stop, deadline), daemon=True)
                   for e in editors]
        for thread in threads:
            thread.start()
        # the three uploads at once, spread over both servers
        run_ids: dict[str, str] = {}
        uploads = [
            threading.Thread(target=lambda n=name, i=i: run_ids.__setitem__(
                n, _upload(bases[i % 2], uploader, n, files[n])))
            for i, name in enumerate(files)
        ]
        for upload in uploads:
            upload.start()
        for upload in uploads:
            upload.join(60)
        assert len(run_ids) == len(files), "an upload failed (see above)"

        runs: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            for name, run_id in run_ids.items():
                response = httpx.get(f"{bases[len(runs) % 2]}/api/v1/imports/{run_id}",
                                     headers={"Authorization": f"Bearer {uploader}"}, timeout=30)
                assert response.status_code == 200, response.text
                runs[name] = response.json()
            if all(r["status"] in ("succeeded", "failed", "cancelled") for r in runs.values()):
                break
            for process in processes:
                assert process.popen.poll() is None, process.tail()
            time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(max(1.0, deadline - time.monotonic() + 30))
        assert not any(thread.is_alive() for thread in threads), "an editor is still editing"
        ran_on = {name: Job.fetch(run_id, connection=redis).worker_name for name, run_id in run_ids.items()}
    finally:
        stop.set()
        _stop(processes)
        redis.close()
    logs = "\n".join(p.tail() for p in processes)

    # every import ran on RQ and finished; they ran at the same time, on more than one worker
    summary = {n: (r["status"], r.get("error"), {k: r[k] for k in ("created", "updated", "unchanged",
               "flagged", "failed", "skipped")}) for n, r in runs.items()}
    assert all(r["status"] == "succeeded" and r["runner"] == "rq" for r in runs.values()), (summary, logs)
    assert all(r["failed"] == 0 for r in runs.values()), summary
    spans = sorted((r["started_at"], r["finished_at"]) for r in runs.values())
    assert any(spans[i + 1][0] < spans[i][1] for i in range(len(spans) - 1)), \
        f"the imports did not overlap: {spans}"
    assert len(set(ran_on.values())) > 1, ran_on

    # no duplicate asset: each endpoint is one live asset, created once, and no record was left
    # in doubt (a strong endpoint match merges; only people's own owners are questions)
    session.expire_all()
    assert _duplicates(session) == []
    assert sum(r["created"] for r in runs.values()) == ENDPOINTS - SEEDED, summary
    kinds = session.scalars(select(Conflict.kind).distinct()).all()
    assert set(kinds) <= {ConflictKind.field_conflict}, kinds
    live = session.scalar(select(func.count()).select_from(Asset).where(
        Asset.deleted_at.is_(None), Asset.merged_into.is_(None)))
    assert live == ENDPOINTS, summary

    # no lost update: on each asset the successful edits raised the counter 1, 2, …, N, and the
    # asset says N with the owner edit N wrote
    errors = [f"editor {e.number}: {m}" for e in editors for m in e.errors]
    assert errors == [], errors[:10]
    assert all(len(e.edits) >= MIN_EDITS for e in editors), [len(e.edits) for e in editors]
    assert sum(e.stale for e in editors) > 0, "no edit ever collided: the test proves nothing"
    by_asset: dict[str, list[Edit]] = defaultdict(list)
    for edit in (edit for e in editors for edit in e.edits):
        by_asset[edit.asset_id].append(edit)
    for asset_id, edits in by_asset.items():
        counts = sorted(edit.count for edit in edits)
        assert counts == list(range(1, len(edits) + 1)), (asset_id, counts)
        asset = session.get(Asset, uuid.UUID(asset_id))
        last = max(edits, key=lambda edit: edit.count)
        assert (asset.notes, asset.owner) == (f"count={last.count}", last.owner), asset_id

    # the audit chain is whole, imports' batches and edits interleaved
    verified = audit.verify(session)
    assert verified.ok, verified

    print(f"\nscale-out: {sum(len(e.edits) for e in editors)} edits, "
          f"{sum(e.stale for e in editors)} refused as stale; imports {summary}; "
          f"{live} assets; {time.monotonic() - started:.1f}s")
