"""`audit verify` workload of `make bench` (SPEC §11: `audit verify` of 10,000,000 events within
2x hashing the same canonical JSON in a tight loop).

The events live in a database of their own (`BENCH_AUDIT_DATABASE_URL`, default
`inventory_bench_audit`), appended by the app's own `audit.record_many` until there are as many
as asked: a mix of creates, updates with one to four changed fields (text in several scripts,
numbers, lists, nulls), deletes and bulk edits carrying a change set id, as an inventory's log
holds them.

* **product**: `audit.verify(session)` in this process, as `flask audit verify` runs it (raw
  rows, orjson, one worker per core on a log this size).
* **floor**: the same events' canonical JSON (the app's encoder), prepared a batch at a time
  outside the clock, then `hashlib.sha256(blob).hexdigest()` of each in a tight loop: the
  clock runs only around the loops.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from bench import data

TARGET_RATIO = 2.0
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/inventory_bench_audit"
APPEND_BATCH = 20_000
FLOOR_BATCH = 50_000


@dataclass
class VerifyBench:
    label: str
    events: int
    seconds: float
    floor_s: float
    ok_chain: bool

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor_s if self.floor_s else float("inf")

    @property
    def ok(self) -> bool:
        return self.ok_chain and self.ratio <= TARGET_RATIO

    def line(self) -> str:
        return (f"{self.label:<13} {self.events:>11,} events  product {self.seconds:7.2f}s "
                f"({self.seconds / max(self.events, 1) * 1e6:.2f} us/event)  floor (sha256 of the canonical "
                f"JSON, tight loop) {self.floor_s:6.2f}s  ratio {self.ratio:4.2f}x (target <= {TARGET_RATIO:.0f}x)  "
                f"chain {'OK' if self.ok_chain else 'BROKEN'}  {'OK' if self.ok else 'MISSED'}")


def _entries(rng: random.Random, n: int):  # type: ignore[no-untyped-def]
    from webapp.models import AuditAction
    from webapp.services import audit

    owners = ["dba-team@example.com", "Zürich Ops", "payments-platform", "数据团队", None]
    entries = []
    for _ in range(n):
        asset = uuid.uuid4()
        kind = rng.random()
        if kind < 0.3:
            changes = {"name": [None, f"prod-orders-{rng.randrange(10**6)}"], "engine": [None, "postgresql"],
                       "port": [None, 5432], "tags": [None, ["pci", "tier-1"]]}
            action = AuditAction.create
        elif kind < 0.95:
            fields = rng.sample(["owner", "port", "criticality", "notes", "backup_retention_days", "aliases"],
                                rng.randint(1, 4))
            changes = {f: [rng.choice(owners), rng.choice(owners)] if f in ("owner", "notes")
                       else [rng.randrange(100), rng.randrange(100)] if f in ("port", "backup_retention_days")
                       else [["db1.example.com"], ["db1.example.com", "10.0.0.7"]] if f == "aliases"
                       else ["low", "high"] for f in fields}
            action = AuditAction.update
        else:
            changes, action = {}, AuditAction.delete
        entries.append(audit.Entry(action, "asset", asset, changes))
    return entries


def ensure_events(url: str, wanted: int) -> int:
    """Append events with the app's own `record_many` until there are `wanted`."""
    from sqlalchemy import func, select, text

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import AuditEvent, ChangeSet
    from webapp.services import audit
    from webapp.services.actor import Actor

    data.ensure_database(url)
    app = create_app(data.app_config(url))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        session = db.session
        have = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
        if have < wanted:
            rng = random.Random(have)
            started = time.perf_counter()
            actor = Actor.cli("bench")
            while have < wanted:
                n = min(APPEND_BATCH, wanted - have)
                change_set = None
                if rng.random() < 0.2:  # a bulk edit: its events carry the change set's id
                    change_set = ChangeSet(actor_label="bench")
                    session.add(change_set)
                    session.flush()
                audit.record_many(session, actor, _entries(rng, n),
                                  change_set_id=change_set.id if change_set else None)
                session.commit()
                have += n
            session.execute(text("ANALYZE audit_events"))  # the History cases' plans need them
            session.commit()
            print(f"  (appended events up to {have:,} in {time.perf_counter() - started:.1f}s)", flush=True)
        db.session.remove()
        db.engine.dispose()
    return have


def floor(url: str) -> float:
    """Seconds of sha256 over every event's canonical JSON, the JSON prepared outside the clock."""
    import psycopg

    from webapp.services import audit

    hashed = 0.0
    with psycopg.connect(data.conninfo(url)) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        with conn.cursor(name="floor") as cursor:
            cursor.execute("SELECT occurred_at, actor_id::text, actor_label, ip, user_agent, request_id, action, "
                           "entity_type, entity_id, changes, message, prev_hash, change_set_id::text "
                           "FROM audit_events ORDER BY id")
            while rows := cursor.fetchmany(FLOOR_BATCH):
                blobs = []
                for r in rows:
                    payload = {"occurred_at": r[0].isoformat(), "actor_id": r[1], "actor_label": r[2], "ip": r[3],
                               "user_agent": r[4], "request_id": r[5], "action": r[6], "entity_type": r[7],
                               "entity_id": r[8], "changes": r[9], "message": r[10], "prev_hash": r[11]}
                    if r[12] is not None:
                        payload["change_set_id"] = r[12]
                    blobs.append(audit._dumps(payload).encode())
                sha256 = hashlib.sha256
                started = time.perf_counter()
                for blob in blobs:
                    sha256(blob).hexdigest()
                hashed += time.perf_counter() - started
    return hashed


def run(url: str, events: int) -> VerifyBench:
    from webapp import create_app
    from webapp.extensions import db
    from webapp.services import audit

    print(f"\naudit verify: {events:,} events ({make_url(url).database})", flush=True)
    have = ensure_events(url, events)
    app = create_app(data.app_config(url))
    with app.app_context():
        started = time.perf_counter()
        result = audit.verify(db.session)
        seconds = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    if not result.ok:
        print(f"  verify: BROKEN at {result.first_broken_id}: {result.reason}", flush=True)
    floor_s = floor(url)
    outcome = VerifyBench("audit verify", have, seconds, floor_s, result.ok and result.checked == have)
    print(outcome.line(), flush=True)
    return outcome
