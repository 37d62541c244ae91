"""Bulk action workload of `make bench` (SPEC §11: "bulk action on 100,000 assets (set a
field): ≤ 1.5× the write floor for the same rows").

The product: one change set that sets `owner` on every live asset of the bench inventory
(100,000 by default), through the service the page and the API use — previewed (the selection
frozen with each asset's version), then applied in batches, each batch committing the asset rows
and one hash-chained audit event per asset carrying the change set's id. The ratio is of the
apply; the preview is timed and printed beside it.

The floor, measured on the same rows just before and just after (the mean of the two: the
machine is shared and noisy), each time in one transaction that is rolled back, and each phase
after a VACUUM, so none meets another's dead rows: one
`UPDATE` of those rows writing what the change set writes to them (owner, search text, locks,
field sources, version, updated_at/by), and a `COPY` of as many audit rows as it appends, built
beforehand (no hashing, no Python per row while timed), and the rewrite of the policy results
the change alters (the owner control's, one per asset: a DELETE and a COPY of as many rows, built
beforehand), which the product makes in the same transactions (SPEC §12; it rewrites only the
results that changed). The least PostgreSQL needs for the same rows on this machine.

Afterwards the change set is undone (timed too), so the inventory is as it was for a rerun.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from bench import data

TARGET_RATIO = 1.5


@dataclass
class BulkResult:
    assets: int
    preview_s: float
    product_s: float
    floor_s: float
    undo_s: float
    changed: int
    batch_size: int

    @property
    def ratio(self) -> float:
        return self.product_s / self.floor_s if self.floor_s else float("inf")

    @property
    def ok(self) -> bool:
        return self.ratio <= TARGET_RATIO

    @property
    def label(self) -> str:
        return f"bulk set owner on {self.assets:,} assets"

    def line(self) -> str:
        load = os.getloadavg()
        verdict = "OK" if self.ok else "MISSED"
        return (
            f"{self.label:<40} product {self.product_s:6.2f}s  floor {self.floor_s:6.2f}s  "
            f"ratio {self.ratio:4.2f} (target <= {TARGET_RATIO:.1f}) {verdict}  "
            f"load average {load[0]:.1f}\n"
            f"    preview (selection frozen) {self.preview_s:.2f}s; apply in batches of "
            f"{self.batch_size:,}: {self.changed:,} assets changed; undo {self.undo_s:.2f}s"
        )


def vacuum(url: str) -> None:
    """Reclaim the dead row versions the previous phase left (the floor's rolled-back rows, the
    build's), so each measured phase starts from the same kind of table."""
    with psycopg.connect(data.conninfo(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) assets, audit_events, asset_tags, policy_results")


def _floor(url: str, ids: list[uuid.UUID], owner: str, change_set_id: uuid.UUID) -> float:
    """The same rows written by SQL alone (rolled back): seconds."""
    now = datetime.now(UTC)
    # hashes as random as the chain's (sequential ones would only ever append to the right
    # edge of the unique indexes on hash and prev_hash, cheaper than the real thing)
    digests = [hashlib.sha256(f"{owner}:{i}".encode()).hexdigest() for i in range(len(ids) + 1)]
    rows = [
        (now, None, "bench", None, None, None, "update", "asset", str(asset_id),
         json.dumps({"owner": ["before", owner], "version": [1, 2]}), "bulk change, change set #0",
         digests[i], digests[i + 1], change_set_id)
        for i, asset_id in enumerate(ids)
    ]
    with psycopg.connect(data.conninfo(url)) as conn:
        # an owner change changes one result per asset, the owner control's reason ("owned by
        # …"): the product rewrites just those rows, and so does the floor
        results = conn.execute(
            "SELECT asset_id, control_id, status, 'owned by ' || %(owner)s, %(now)s FROM policy_results "
            "WHERE asset_id = ANY(%(ids)s) AND control_id = 'ownership.owner_set'",
            {"ids": ids, "now": now, "owner": owner}).fetchall()
        started = time.perf_counter()
        conn.execute(
            """UPDATE assets SET owner = %(owner)s::varchar,
                   search_text = replace(search_text, lower(coalesce(owner, '')), lower(%(owner)s)),
                   locked_fields = CASE WHEN locked_fields ? 'owner' THEN locked_fields
                                        ELSE locked_fields || '["owner"]'::jsonb END,
                   field_sources = field_sources || '{"owner": "manual"}'::jsonb,
                   version = version + 1, updated_at = now(), updated_by = NULL
               WHERE id = ANY(%(ids)s)""",
            {"owner": owner, "ids": ids},
        )
        with conn.cursor() as cur, cur.copy(
            "COPY audit_events (occurred_at, actor_id, actor_label, ip, user_agent, request_id, "
            "action, entity_type, entity_id, changes, message, prev_hash, hash, change_set_id) "
            "FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        # the changed assets' policy results, rewritten as the product rewrites them (SPEC §12:
        # kept current in the same transaction): deleted, and as many written again
        conn.execute("DELETE FROM policy_results WHERE asset_id = ANY(%(ids)s) "
                     "AND control_id = 'ownership.owner_set'", {"ids": ids})
        with conn.cursor() as cur, cur.copy(
            "COPY policy_results (asset_id, control_id, status, reason, evaluated_at) FROM STDIN"
        ) as copy:
            for result in results:
                copy.write_row(result)
        seconds = time.perf_counter() - started
        conn.rollback()
    return seconds


def run(app, batch_size: int | None = None) -> BulkResult:  # type: ignore[no-untyped-def]
    """Preview, floor, apply and undo a bulk `owner` change of every live asset."""
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import ChangeSetItem
    from webapp.services import asset_search, change_sets, policy_results
    from webapp.services.actor import Actor

    url = app.config["SQLALCHEMY_DATABASE_URI"]
    batch_size = batch_size or int(app.config.get("BULK_BATCH_SIZE") or change_sets.BATCH_SIZE)
    owner = f"bench-bulk-{datetime.now(UTC):%H%M%S}@example.com"
    actor = Actor(user_id=None, label="bench")
    with app.app_context():
        session = db.session
        started = time.perf_counter()
        selection = change_sets.Selection.of_filter(asset_search.parse_query({}), {})
        change_set = change_sets.create(session, actor, selection,
                                        change_sets.BulkAction.parse({"owner": owner}))
        preview_s = time.perf_counter() - started
        change_set_id = change_set.id
        ids = list(session.scalars(select(ChangeSetItem.asset_id)
                                   .where(ChangeSetItem.change_set_id == change_set_id)))
        session.commit()
        # the inventory as a deployment has it: every asset with its policy results (the bench
        # data is loaded with COPY, past the services); not timed
        policy_results.evaluate_missing(session)
        db.engine.dispose()
        vacuum(url)
        floor_before = _floor(url, ids, owner, change_set_id)
        vacuum(url)

        started = time.perf_counter()
        change_set = change_sets.apply(session, actor, change_set_id)
        change_set = change_sets.execute(session, change_set.id, batch_size=batch_size)
        product_s = time.perf_counter() - started
        if change_set.status.value != "succeeded":
            raise SystemExit(f"bulk change failed: {change_set.error}")
        changed = change_set.changed
        db.session.remove()
        # the floor again, after the change: the machine is shared and noisy, so the floor is
        # the mean of a measure on each side of the product's
        vacuum(url)
        floor_s = (floor_before + _floor(url, ids, owner + ".2", change_set_id)) / 2
        vacuum(url)

        started = time.perf_counter()
        reverse = change_sets.undo(session, actor, change_set.id)
        reverse = change_sets.execute(session, reverse.id, batch_size=batch_size)
        undo_s = time.perf_counter() - started
        if reverse.status.value != "succeeded" or reverse.changed != changed:
            raise SystemExit(f"undo of the bulk change failed: {reverse.error}")
        db.session.remove()
    return BulkResult(len(ids), preview_s, product_s, floor_s, undo_s, changed, batch_size)
