"""The write floor of the import workload: what PostgreSQL alone needs to store it.

An nmap import of 100,000 records against 100,000 assets (half new, half changed) writes 50,000
asset rows, rewrites 50,000 more, appends 100,000 audit events, 100,000 record outcomes,
150,000 identifier keys and 100,000 FQDN↔IP bridges, and keeps the policy results of the
assets it wrote current (SPEC §12). Here the same rows are produced by
`INSERT … SELECT` and `UPDATE` statements run inside the server: no parsing, no client, no
network, no Python. The sum is a lower bound for any importer on this machine and this schema;
the transaction is rolled back, so nothing is kept.
"""

from __future__ import annotations

import time

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
    ("assets: update {changed:,}", """
        UPDATE assets SET engine_version = coalesce(engine_version, '1') || '.1',
            aliases = aliases::jsonb || '["10.1.2.3"]'::jsonb, search_text = search_text || ' 10.1.2.3',
            version = version + 1, updated_at = now(), last_seen_at = now(), last_import_id = %(run)s
        WHERE id IN (SELECT id FROM assets WHERE name NOT LIKE 'floor-%%' ORDER BY id DESC LIMIT %(changed)s)"""),
    ("audit events: append {records:,}", """
        INSERT INTO audit_events (occurred_at, actor_label, action, entity_type, entity_id, changes,
            prev_hash, hash)
        SELECT now(), 'import #0', 'update', 'asset', gen_random_uuid()::text,
            '{{"engine_version": ["1.0", "1.0.1"], "version": [1, 2]}}',
            md5(i::text || 'p') || md5(i::text || 'q'), md5(i::text || 'h') || md5(i::text || 'k')
        FROM generate_series(1, %(records)s) i"""),
    ("record outcomes: insert {records:,}", """
        INSERT INTO import_records (run_id, seq, key, outcome, asset_id, changes, asset_version,
            fingerprint, seen_at)
        SELECT %(run)s, 10000000 + row_number() OVER (), 'ep:' || host || ':' || coalesce(port, 0),
            'updated', id, '{{"engine_version": ["1.0", "1.0.1"]}}', version,
            md5(id::text) || md5(host || 'f'), now()
        FROM assets WHERE host IS NOT NULL LIMIT %(records)s"""),
    ("identifier keys: insert {keys:,}", """
        INSERT INTO asset_identifiers (key, asset_id)
        SELECT 'ep:floor-' || i || '.example.com:5432', (SELECT id FROM assets ORDER BY id LIMIT 1)
        FROM generate_series(1, %(keys)s) i"""),
    ("host bridges: insert {records:,}", """
        INSERT INTO host_bridges (address, hostname, import_run_id, learnt_at)
        SELECT '10.' || (i / 65536) || '.' || (i / 256 %% 256) || '.' || (i %% 256),
            'floor-' || i || '.example.com', %(run)s, now()
        FROM generate_series(1, %(records)s) i"""),
    # SPEC §12: an import batch keeps the policy results of what it wrote current, in the same
    # transaction; here the changed assets' rows are rewritten and the new ones' written
    # the changed assets' new engine version changes one result each (the product rewrites only
    # the results that changed)
    ("policy results: rewrite {changed:,}", """
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


def run(url: str, records: int) -> float:
    """Print each step's time and return their sum (seconds)."""
    params = {"records": records, "new": records // 2, "changed": records // 2, "keys": records * 3 // 2}
    total = 0.0
    with psycopg.connect(data.conninfo(url)) as conn:
        # as many results per new asset as the inventory's assets have on average (the controls
        # that apply), or one per control before any evaluation
        per_asset = conn.execute(
            "SELECT round(count(*)::numeric / nullif(count(DISTINCT asset_id), 0)) FROM policy_results"
        ).fetchone()[0]
        params["controls"] = int(per_asset or len(_controls()))
        params["run"] = conn.execute(RUN).fetchone()[0]
        print(f"write floor of an import of {records:,} records (SQL inside PostgreSQL, rolled back):")
        for label, statement in STEPS:
            started = time.perf_counter()
            conn.execute(statement.format(), params)
            seconds = time.perf_counter() - started
            total += seconds
            print(f"  {label.format(**params):<36} {seconds:6.2f}s", flush=True)
        conn.rollback()
    print(f"  {'sum':<36} {total:6.2f}s", flush=True)
    return total
