"""The floors of the import workload (SPEC §11).

The write floor (`run`): what PostgreSQL alone needs to store the rows an import writes.
An nmap import of 100,000 records against 100,000 assets (half new, half changed) writes 50,000
asset rows, rewrites 50,000 more, appends 100,000 audit events, 100,000 record outcomes,
150,000 identifier keys and 100,000 FQDN↔IP bridges, and keeps the policy results of the
assets it wrote current (SPEC §12). An inventory-json import of the same size writes 50,000
asset rows (each with a tag link and four identifier keys), rewrites 25,000 (a new owner; the
other 25,000 existing are unchanged), and appends 75,000 audit events and 100,000 record
outcomes. Both also keep what each record reported (SPEC §6: one observation row per field
reported, six or nine a record) and the last sighting of each asset they saw unchanged
(`last_seen_at`). Here the same rows are produced by `INSERT … SELECT` and `UPDATE` statements run
inside the server: no parsing, no client, no network, no Python. The sum is a lower bound for
any importer on this machine and this schema; the transaction is rolled back, so nothing is
kept.

The product-independent floor (`copy_floor`): a `COPY` of as many searchable rows as records
into a table with a trigram index and five btree indexes, plus a `COPY` of as many audit rows,
into tables made for it (not the product's schema), the rows built beforehand. What storing
that many indexed, searchable rows and their log costs on this machine, whatever the schema.
"""

from __future__ import annotations

import json
import time
import uuid

import psycopg

from bench import data

STEPS = (
    ("assets: insert {new:,}", """
        INSERT INTO assets (id, name, engine, engine_version, host, port, database_name, aliases,
            cloud_provider, region, environment, status, owner, criticality, data_classification,
            metadata, source, locked_fields, version, search_text, created_at, updated_at,
            first_seen_at, last_seen_at, last_import_id)
        SELECT gen_random_uuid(), 'floor-' || name, engine, engine_version, 'floor-' || host, port,
            database_name, aliases, cloud_provider, region, environment, status, owner,
            criticality, data_classification, metadata, 'bench', '[]', 1, 'floor ' || search_text,
            now(), now(), now(), now(), %(run)s
        FROM assets WHERE deleted_at IS NULL ORDER BY id LIMIT %(new)s"""),
    ("assets: update {changed:,}", "{update}"),
    ("assets: last seen {seen:,}", """
        UPDATE assets SET last_seen_at = now(), missed_since = NULL
        WHERE id IN (SELECT id FROM assets WHERE name NOT LIKE 'floor-%%' ORDER BY id LIMIT %(seen)s)"""),
    ("observations: write {observed:,}", """
        INSERT INTO observations (asset_id, field, source, import_run_id, value, seen_at)
        SELECT a.id, 'field-' || c, 'bench', %(run)s, to_jsonb('value ' || c), now()
        FROM (SELECT id FROM assets ORDER BY id LIMIT %(observed)s / 9 + 1) a
        CROSS JOIN generate_series(1, 9) c LIMIT %(observed)s"""),
    ("audit events: append {audited:,}", """
        INSERT INTO audit_events (occurred_at, actor_label, action, entity_type, entity_id, changes,
            prev_hash, hash)
        SELECT now(), 'import #0', 'update', 'asset', gen_random_uuid()::text,
            '{{"engine_version": ["1.0", "1.0.1"], "version": [1, 2]}}',
            md5(i::text || 'p') || md5(i::text || 'q'), md5(i::text || 'h') || md5(i::text || 'k')
        FROM generate_series(1, %(audited)s) i"""),
    ("record outcomes: insert {records:,}", """
        INSERT INTO import_records (run_id, seq, key, outcome, asset_id, changes, asset_version,
            fingerprint, seen_at)
        SELECT %(run)s, 10000000 + row_number() OVER (), 'ep:' || host || ':' || coalesce(port, 0),
            'updated', id, '{{"engine_version": ["1.0", "1.0.1"]}}', version,
            md5(id::text) || md5(host || 'f'), now()
        FROM assets WHERE host IS NOT NULL LIMIT %(records)s"""),
    ("tag links: insert {tagged:,}", """
        INSERT INTO asset_tags (asset_id, tag_id)
        SELECT id, (SELECT min(id) FROM tags) FROM assets WHERE name LIKE 'floor-%%'
        LIMIT %(tagged)s"""),
    ("identifier keys: insert {keys:,}", """
        INSERT INTO asset_identifiers (key, asset_id)
        SELECT 'ep:floor-' || i || '.example.com:5432', (SELECT id FROM assets ORDER BY id LIMIT 1)
        FROM generate_series(1, %(keys)s) i"""),
    ("host bridges: insert {bridges:,}", """
        INSERT INTO host_bridges (address, hostname, import_run_id, learnt_at)
        SELECT '10.' || (i / 65536) || '.' || (i / 256 %% 256) || '.' || (i %% 256),
            'floor-' || i || '.example.com', %(run)s, now()
        FROM generate_series(1, %(bridges)s) i"""),
    # SPEC §12: an import batch keeps the policy results of what it wrote current, in the same
    # transaction; here the changed assets' rows are rewritten and the new ones' written
    # the changed assets' new engine version changes one result each (the product rewrites only
    # the results that changed)
    ("policy results: rewrite {rewritten:,}", """
        WITH gone AS (DELETE FROM policy_results WHERE control_id = 'lifecycle.engine_supported'
                AND asset_id IN (SELECT id FROM assets WHERE name NOT LIKE 'floor-%%'
                                 ORDER BY id DESC LIMIT %(changed)s)
            RETURNING asset_id, control_id, status, reason)
        INSERT INTO policy_results (asset_id, control_id, status, reason, evaluated_at)
        SELECT asset_id, control_id, status, reason, now() FROM gone"""),
    ("policy results: write {new:,} assets' ({controls} each)", """
        INSERT INTO policy_results (asset_id, control_id, status, reason, evaluated_at)
        SELECT a.id, 'floor.control-' || c, 'unknown', 'posture not known', now()
        FROM assets a CROSS JOIN generate_series(1, %(controls)s) c WHERE a.name LIKE 'floor-%%'"""),
)

# what each format's bench file makes an import write (bench/imports.py builds the files)
UPDATES = {
    "nmap-xml": """
        UPDATE assets SET engine_version = coalesce(engine_version, '1') || '.1',
            aliases = aliases::jsonb || '["10.1.2.3"]'::jsonb, search_text = search_text || ' 10.1.2.3',
            version = version + 1, updated_at = now(), last_seen_at = now(), last_import_id = %(run)s
        WHERE id IN (SELECT id FROM assets WHERE name NOT LIKE 'floor-%%' ORDER BY id DESC LIMIT %(changed)s)""",
    "inventory-json": """
        UPDATE assets SET owner = 'bench-owner-' || (version %% 50),
            search_text = search_text || ' bench-owner',
            version = version + 1, updated_at = now(), last_seen_at = now(), last_import_id = %(run)s
        WHERE id IN (SELECT id FROM assets WHERE name NOT LIKE 'floor-%%' ORDER BY id DESC LIMIT %(changed)s)""",
}


def shape(workload: str, records: int) -> dict[str, int]:
    """How many rows of each kind an import of `records` records of this format writes."""
    new = records // 2
    if workload == "nmap-xml":  # every existing record updates (its address joins the aliases)
        changed = records - new
        # six observed fields a record (engine, version, host, port, aliases, metadata)
        return {"records": records, "new": new, "changed": changed, "audited": new + changed,
                "keys": records * 3 // 2, "bridges": records, "tagged": 0, "rewritten": changed,
                "seen": 0, "observed": records * 6}
    existing = records - new
    changed = existing // 2  # a quarter change their owner, a quarter are identical (seen again)
    # nine observed fields a new record, six or seven an existing one (its engine version when known)
    return {"records": records, "new": new, "changed": changed, "audited": new + changed,
            "keys": new * 4, "bridges": 0, "tagged": new, "rewritten": 0,
            "seen": existing - changed, "observed": new * 9 + existing * 67 // 10}


RUN = """
    WITH f AS (INSERT INTO import_files (id, sha256, size, created_at)
               VALUES (gen_random_uuid(), repeat('0', 64), 0, now()) RETURNING id)
    INSERT INTO import_runs (id, number, file_id, filename, sha256, size, format, source,
        uploaded_by_label, status, dry_run, runner, total, processed, created, updated, unchanged,
        flagged, failed, skipped, row_errors, warnings, cancel_requested, created_at)
    SELECT gen_random_uuid(), coalesce((SELECT max(number) FROM import_runs), 0) + 1, f.id,
        'floor.xml', repeat('0', 64), 0, 'nmap-xml', 'bench', 'bench', 'running', false, 'inline',
        0, 0, 0, 0, 0, 0, 0, 0, '[]', '[]', false, now()
    FROM f RETURNING id"""


def _controls() -> list[str]:
    from webapp import policy

    return list(policy.CONTROLS)


def run(url: str, records: int, workload: str = "nmap-xml", verbose: bool = False) -> float:
    """The write floor: the sum of its steps' seconds (each printed when `verbose`)."""
    params: dict[str, object] = dict(shape(workload, records))
    total = 0.0
    with psycopg.connect(data.conninfo(url)) as conn:
        # as many results per new asset as the inventory's assets have on average (the controls
        # that apply), or one per control before any evaluation
        per_asset = conn.execute(
            "SELECT round(count(*)::numeric / nullif(count(DISTINCT asset_id), 0)) FROM policy_results"
        ).fetchone()[0]
        params["controls"] = int(per_asset or len(_controls()))
        params["run"] = conn.execute(RUN).fetchone()[0]
        if verbose:
            print(f"write floor of an {workload} import of {records:,} records "
                  "(SQL inside PostgreSQL, rolled back):")
        for label, statement in STEPS:
            if "{update}" in statement:
                statement = UPDATES[workload]
            count = next((params[k] for k in ("tagged", "bridges", "rewritten", "seen") if f"{{{k}" in label), 1)
            if not count:
                continue
            started = time.perf_counter()
            conn.execute(statement.format(), params)
            seconds = time.perf_counter() - started
            total += seconds
            if verbose:
                print(f"  {label.format(**params):<36} {seconds:6.2f}s", flush=True)
        conn.rollback()
    if verbose:
        print(f"  {'sum':<36} {total:6.2f}s", flush=True)
    return total


SEARCHABLE = """
    CREATE TABLE floor_searchable (id uuid PRIMARY KEY, name text NOT NULL, engine text,
        host text, port integer, owner text, environment text, updated_at timestamptz NOT NULL,
        search_text text NOT NULL);
    CREATE INDEX ON floor_searchable USING gin (search_text gin_trgm_ops);
    CREATE INDEX ON floor_searchable (name, id);
    CREATE INDEX ON floor_searchable (host, port);
    CREATE INDEX ON floor_searchable (lower(owner), id);
    CREATE INDEX ON floor_searchable (updated_at, id);
    CREATE TABLE floor_audit (id bigint PRIMARY KEY, occurred_at timestamptz NOT NULL,
        action text NOT NULL, entity_type text NOT NULL, entity_id text, changes jsonb NOT NULL,
        prev_hash text NOT NULL, hash text NOT NULL)"""


def copy_floor(url: str, records: int, verbose: bool = False) -> float:
    """The product-independent floor: seconds to COPY `records` searchable rows (a trigram
    index and five btree indexes: the key, name, endpoint, owner, updated) and `records`
    audit rows into tables made for it, the rows built beforehand; rolled back."""
    import hashlib

    rows = []
    audit = []
    previous = "0" * 64
    for i in range(records):
        name, host = f"copy-db-{i}", f"copy-{i}.floor.example.com"
        owner, environment = f"team-{i % 40}", ("production", "staging")[i % 2]
        search = " ".join((name, "postgresql", host, owner, environment, f"app_{i % 100}"))
        rows.append((uuid.uuid4(), name, "postgresql", host, 5432, owner, environment,
                     "2026-01-01 00:00:00+00", search))
        changes = json.dumps({"owner": [None, owner], "host": [None, host]})
        digest = hashlib.sha256((previous + changes).encode()).hexdigest()
        audit.append((i + 1, "2026-01-01 00:00:00+00", "create", "asset", str(rows[-1][0]), changes,
                      previous, digest))
        previous = digest
    with psycopg.connect(data.conninfo(url)) as conn:
        conn.execute(SEARCHABLE)
        started = time.perf_counter()
        with conn.cursor() as cur:
            with cur.copy("COPY floor_searchable FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            with cur.copy("COPY floor_audit FROM STDIN") as copy:
                for row in audit:
                    copy.write_row(row)
        seconds = time.perf_counter() - started
        conn.rollback()
    if verbose:
        print(f"product-independent floor: COPY of {records:,} searchable rows (a trigram and five "
              f"btree indexes) and {records:,} audit rows {seconds:6.2f}s", flush=True)
    return seconds
