"""Policy workload of `make bench` (SPEC §11: policy evaluation of 1,000,000 assets within 3x the
same predicates as one SQL statement; SPEC §12).

The product's figure is `policy_results.evaluate_all` from an empty `policy_results` table — what
an admin's parameter change or the daily re-evaluation does at worst, when every result is new:
every live asset's facts read a batch at a time, its relationships and exceptions loaded for the
batch, every control checked in Python, and the results written with COPY, a transaction per
batch, then ANALYZE.

The floor is PostgreSQL alone computing the same thirteen controls for the same assets: one
`INSERT INTO … SELECT` whose CASE expressions are the controls' predicates (with the admin's
parameter values), whose graph controls read the relationships through two grouped joins, and
whose reasons are built with `format()`. The engine end-of-life table enters the statement as a
lookup of each distinct (engine, version) to its answer, computed beforehand by the table's own
matcher — the cheapest form the table could take inside the server. The floor writes into a copy
of `policy_results` with the same keys, indexes and foreign key, in one transaction, rolled back.

Both produce the same statuses: after both have run, the counts per (control, status) are
compared and any difference is printed and counts as a miss.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from bench import data

TARGET_RATIO = 3.0

FLOOR_SQL = """
INSERT INTO policy_results_floor (asset_id, control_id, status, reason, evaluated_at)
WITH live AS (
    SELECT id, name, environment FROM assets WHERE deleted_at IS NULL AND merged_into IS NULL
), deps AS (
    SELECT r.source_id AS id, count(*) AS n,
        count(*) FILTER (WHERE t.environment IN ('staging', 'development', 'test')) AS nonprod,
        count(*) FILTER (WHERE t.environment = 'unknown') AS unclear,
        (array_agg(t.name || ' (' || t.environment || ')' ORDER BY t.name)
            FILTER (WHERE t.environment IN ('staging', 'development', 'test')))[1:5] AS nonprod_names,
        (array_agg(t.name || ' (' || t.environment || ')' ORDER BY t.name)
            FILTER (WHERE t.environment = 'unknown'))[1:5] AS unclear_names,
        min(t.name) AS one_name
    FROM asset_relationships r JOIN live t ON t.id = r.target_id
    WHERE r.kind = 'depends_on'
    GROUP BY r.source_id
), copies AS (
    SELECT id, count(*) AS n, (array_agg(what ORDER BY what))[1:5] AS shown FROM (
        SELECT r.source_id AS id,
            CASE r.kind WHEN 'replicates_to' THEN 'replicates to ' ELSE 'backs up to ' END || t.name AS what
        FROM asset_relationships r JOIN live t ON t.id = r.target_id
        WHERE r.kind IN ('replicates_to', 'backs_up_to')
        UNION ALL
        SELECT r.target_id, 'replica of ' || s.name
        FROM asset_relationships r JOIN live s ON s.id = r.source_id
        WHERE r.kind = 'replicates_to'
    ) c GROUP BY id
), eol (engine, version, status, reason) AS (
    SELECT * FROM jsonb_to_recordset(%(eol)s::jsonb)
        AS x(engine text, version text, status text, reason text)
), a AS (
    SELECT a.*, a.environment = 'production' AS prod,
        greatest(extract(epoch FROM %(now)s::timestamptz - a.last_backup_at) / 3600, 0) AS backup_hours,
        CASE a.criticality WHEN 'low' THEN %(min_days_low)s WHEN 'medium' THEN %(min_days_medium)s
            WHEN 'high' THEN %(min_days_high)s WHEN 'critical' THEN %(min_days_critical)s END AS need_days,
        CASE a.criticality WHEN 'high' THEN %(max_age_hours_high)s
            WHEN 'critical' THEN %(max_age_hours_critical)s END AS max_hours,
        greatest((%(now)s::date - a.last_seen_at::date), 0) AS seen_days,
        greatest((%(now)s::date - a.missed_since::date), 0) AS missed_days
    FROM assets a
    WHERE a.deleted_at IS NULL AND a.merged_into IS NULL AND a.status <> 'decommissioned'
)
SELECT a.id, r.control_id, r.status, r.reason, %(now)s
FROM a
LEFT JOIN deps d ON d.id = a.id
LEFT JOIN copies c ON c.id = a.id
LEFT JOIN eol e ON e.engine = a.engine AND e.version = btrim(a.engine_version)
CROSS JOIN LATERAL (VALUES
    ('encryption.at_rest',
        CASE WHEN a.encrypted_at_rest IS NULL THEN 'unknown' WHEN a.encrypted_at_rest THEN 'pass' ELSE 'fail' END,
        CASE WHEN a.encrypted_at_rest IS NULL THEN 'encryption at rest not known'
             WHEN a.encrypted_at_rest THEN 'storage is encrypted at rest'
             ELSE 'storage is not encrypted at rest' END),
    ('encryption.tls_required',
        CASE WHEN a.tls_required IS NULL THEN 'unknown' WHEN a.tls_required THEN 'pass' ELSE 'fail' END,
        CASE WHEN a.tls_required IS NULL THEN 'whether TLS is required is not known'
             WHEN a.tls_required THEN 'connections must use TLS'
             ELSE 'connections without TLS are accepted' END),
    ('network.not_public',
        CASE WHEN a.publicly_accessible IS NULL THEN 'unknown' WHEN a.publicly_accessible THEN 'fail' ELSE 'pass' END,
        CASE WHEN a.publicly_accessible IS NULL THEN 'public accessibility not known'
             WHEN a.publicly_accessible THEN 'the database is publicly accessible'
             ELSE 'the database is not publicly accessible' END),
    ('ownership.owner_set',
        CASE WHEN btrim(coalesce(a.owner, '')) = '' THEN 'fail' ELSE 'pass' END,
        CASE WHEN btrim(coalesce(a.owner, '')) = '' THEN 'no owner is set' ELSE 'owned by ' || a.owner END),
    ('ownership.classified',
        CASE WHEN NOT a.prod THEN NULL
             WHEN a.criticality IS NULL OR a.data_classification IS NULL THEN 'fail' ELSE 'pass' END,
        CASE WHEN a.criticality IS NULL AND a.data_classification IS NULL
                 THEN 'neither criticality nor data classification is set'
             WHEN a.criticality IS NULL THEN 'criticality is not set'
             WHEN a.data_classification IS NULL THEN 'data classification is not set'
             ELSE format('criticality %%s, data classification %%s', a.criticality, a.data_classification) END),
    ('backup.retention',
        CASE WHEN NOT a.prod THEN NULL
             WHEN a.backup_retention_days IS NULL THEN 'unknown'
             WHEN a.criticality IS NULL THEN
                 CASE WHEN a.backup_retention_days >= %(min_days_highest)s THEN 'pass' ELSE 'unknown' END
             WHEN a.backup_retention_days = 0 OR a.backup_retention_days < a.need_days THEN 'fail'
             ELSE 'pass' END,
        CASE WHEN a.backup_retention_days IS NULL THEN 'backup retention not known'
             WHEN a.criticality IS NULL AND a.backup_retention_days >= %(min_days_highest)s THEN
                 format('backup retention is %%s days, enough for any criticality', a.backup_retention_days)
             WHEN a.criticality IS NULL THEN
                 format('backup retention is %%s days, but criticality is not set, so the minimum it '
                        'must meet is not known', a.backup_retention_days)
             WHEN a.backup_retention_days = 0 THEN
                 format('automated backups are off (retention 0 days); at least %%s are required for a '
                        '%%s-criticality production database', a.need_days, a.criticality)
             WHEN a.backup_retention_days < a.need_days THEN
                 format('backup retention is %%s days; at least %%s are required for a %%s-criticality '
                        'production database', a.backup_retention_days, a.need_days, a.criticality)
             ELSE format('backup retention is %%s days; a %%s-criticality production database needs '
                         'at least %%s', a.backup_retention_days, a.criticality, a.need_days) END),
    ('backup.recent',
        CASE WHEN NOT a.prod OR a.max_hours IS NULL THEN NULL
             WHEN a.last_backup_at IS NULL THEN 'unknown'
             WHEN a.backup_hours > a.max_hours THEN 'fail' ELSE 'pass' END,
        CASE WHEN a.last_backup_at IS NULL THEN 'time of the last backup not known'
             ELSE format('last backup was %%s; %%s', CASE
                 WHEN a.backup_hours >= 72 THEN floor(a.backup_hours / 24)::int || ' days ago'
                 WHEN a.backup_hours < 1 THEN 'less than an hour ago'
                 ELSE floor(a.backup_hours)::int || ' hours ago' END,
                 CASE WHEN a.backup_hours > a.max_hours
                      THEN format('a %%s-criticality production database needs one within %%s hours',
                                  a.criticality, a.max_hours)
                      ELSE format('(limit %%s hours)', a.max_hours) END) END),
    ('backup.deletion_protection',
        CASE WHEN NOT a.prod THEN NULL WHEN a.deletion_protection IS NULL THEN 'unknown'
             WHEN a.deletion_protection THEN 'pass' ELSE 'fail' END,
        CASE WHEN a.deletion_protection IS NULL THEN 'deletion protection not known'
             WHEN a.deletion_protection THEN 'deletion protection is on'
             ELSE 'deletion protection is off for a production database' END),
    ('lifecycle.not_stale',
        CASE WHEN a.status NOT IN ('active', 'unknown') OR a.last_seen_at IS NULL THEN NULL
             WHEN a.missed_since IS NULL OR a.missed_since >= %(stale_cutoff)s THEN 'pass'
             WHEN a.status = 'unknown' THEN 'unknown' ELSE 'fail' END,
        CASE WHEN a.missed_since IS NULL
                 THEN format('last seen by discovery %%s days ago; no scan that covered it has missed it since',
                             a.seen_days)
             WHEN a.missed_since >= %(stale_cutoff)s
                 THEN format('last seen by discovery %%s days ago; missed by scans that covered it for %%s days, '
                             'within the limit of %%s days', a.seen_days, a.missed_days, %(stale_days)s)
             WHEN a.status = 'unknown'
                 THEN format('status not known; missed by scans that covered it for %%s days (last seen by '
                             'discovery %%s days ago), which is stale for an active asset (limit %%s days)',
                             a.missed_days, a.seen_days, %(stale_days)s)
             ELSE format('missed by scans that covered its host and port, or its cloud account and region, '
                         'for %%s days (last seen by discovery %%s days ago); active assets missed for %%s '
                         'days are stale', a.missed_days, a.seen_days, %(stale_days)s) END),
    ('lifecycle.not_unverified',
        CASE WHEN coalesce(a.last_seen_at, a.first_seen_at) IS NULL THEN 'fail' ELSE 'pass' END,
        CASE WHEN coalesce(a.last_seen_at, a.first_seen_at) IS NULL
                 THEN 'never seen by any discovery import; known only from manual entry'
             ELSE 'seen by discovery, last on ' || coalesce(a.last_seen_at, a.first_seen_at)::date END),
    ('lifecycle.engine_supported',
        CASE WHEN a.engine = 'dynamodb' THEN NULL
             WHEN btrim(coalesce(a.engine_version, '')) = '' OR a.engine = 'other' THEN 'unknown'
             ELSE coalesce(e.status, 'unknown') END,
        CASE WHEN btrim(coalesce(a.engine_version, '')) = '' THEN 'engine version not known'
             WHEN a.engine = 'other' THEN 'engine not known, so its vendor''s support is not known'
             ELSE coalesce(e.reason, 'not in the end-of-life table') END),
    ('graph.prod_depends_on_prod',
        CASE WHEN NOT a.prod THEN NULL WHEN d.n IS NULL THEN 'pass' WHEN d.nonprod > 0 THEN 'fail'
             WHEN d.unclear > 0 THEN 'unknown' ELSE 'pass' END,
        CASE WHEN d.n IS NULL THEN 'depends on nothing in the inventory'
             WHEN d.nonprod > 0 THEN format('depends on %%s non-production assets: %%s', d.nonprod,
                                            array_to_string(d.nonprod_names, ', '))
             WHEN d.unclear > 0 THEN format('depends on %%s assets whose environment is not known: %%s',
                                            d.unclear, array_to_string(d.unclear_names, ', '))
             WHEN d.n = 1 THEN format('its one dependency, %%s, is in production', d.one_name)
             ELSE format('all %%s dependencies are in production', d.n) END),
    ('graph.critical_has_copy',
        CASE WHEN a.criticality IS DISTINCT FROM 'critical' THEN NULL WHEN c.n IS NULL THEN 'fail'
             ELSE 'pass' END,
        CASE WHEN c.n IS NULL THEN 'a critical asset with no replica (replicates_to) and no backup '
                                   'target (backs_up_to) in the inventory'
             ELSE array_to_string(c.shown, '; ') END)
) AS r (control_id, status, reason)
WHERE r.status IS NOT NULL
"""

COUNTS_SQL = "SELECT control_id, status, count(*) FROM {table} GROUP BY 1, 2"


@dataclass
class PolicyResult:
    label: str
    assets: int
    rows: int
    product_s: float
    floor_s: float
    differences: list[str]

    @property
    def ratio(self) -> float:
        return self.product_s / self.floor_s if self.floor_s else float("inf")

    @property
    def ok(self) -> bool:
        return self.ratio <= TARGET_RATIO and not self.differences

    def line(self) -> str:
        same = ("same statuses as the floor" if not self.differences
                else f"{len(self.differences)} (control, status) counts differ")
        return (
            f"policy evaluation  {self.assets:,} assets -> {self.rows:,} results   "
            f"product {self.product_s:.2f}s  floor (one SQL statement) {self.floor_s:.2f}s  "
            f"ratio {self.ratio:.2f}x (target <= {TARGET_RATIO:.0f}x)  {same}  "
            f"{'OK' if self.ok else 'MISS'}"
        )


def _parameters(app: Any, now: datetime) -> tuple[dict[str, Any], Any]:
    """The statement's parameters: the controls' parameter values as the product reads them,
    the stale cutoff, and each distinct (engine, version)'s end-of-life answer."""
    from webapp import policy
    from webapp.extensions import db
    from webapp.policy.lifecycle import EngineSupported
    from webapp.services import policy_results

    with app.app_context():
        ctx = policy_results.context(db.session, now=now)
        versions = db.session.execute(db.text(
            "SELECT DISTINCT engine, btrim(engine_version) FROM assets "
            "WHERE btrim(coalesce(engine_version, '')) <> '' AND engine NOT IN ('dynamodb', 'other')"
        )).all()
        db.session.remove()
    control = policy.CONTROLS[EngineSupported.id]
    answers = []
    for engine, version in versions:
        facts = policy.AssetFacts.from_mapping({"id": None, "name": "x", "engine": engine,
                                                "engine_version": version})
        result = control.check(facts, ctx)
        answers.append({"engine": engine, "version": version, "status": result.status.value,
                        "reason": result.reason})
    retention = ctx.parameters["backup.retention"]
    recent = ctx.parameters["backup.recent"]
    params = {
        "now": now, "stale_cutoff": ctx.stale_cutoff, "stale_days": ctx.stale_after_days,
        **{k: v for k, v in retention.items()},
        "min_days_highest": max(retention.values()),
        **{k: v for k, v in recent.items()},
        "eol": psycopg.types.json.Jsonb(answers),
    }
    return params, ctx


def _counts(conn: psycopg.Connection, table: str) -> dict[tuple[str, str], int]:
    return {(c, s): n for c, s, n in conn.execute(COUNTS_SQL.format(table=table))}


def run(url: str, assets: int) -> PolicyResult:
    from bench.run import prepare
    from webapp.extensions import db
    from webapp.models.base import utcnow
    from webapp.services import policy_results

    app, _ = prepare(url, assets, False)
    live = data.asset_count(url)
    now = utcnow()
    params, _ctx = _parameters(app, now)
    with psycopg.connect(data.conninfo(url), autocommit=True) as conn:
        relationships = conn.execute("SELECT count(*) FROM asset_relationships").fetchone()[0]
        print(f"\npolicy: every control over {live:,} assets and {relationships:,} relationships "
              f"({url.split('@')[-1]})", flush=True)
        conn.execute("TRUNCATE policy_results")
        conn.execute("VACUUM ANALYZE policy_results")
        conn.execute("CHECKPOINT")

    with app.app_context():
        started = time.perf_counter()
        policy_results.evaluate_all(db.session, now=now)
        product_s = time.perf_counter() - started
        db.session.remove()

    with psycopg.connect(data.conninfo(url)) as conn:
        product = _counts(conn, "policy_results")
        conn.execute("CHECKPOINT")
        conn.execute("DROP TABLE IF EXISTS policy_results_floor")
        conn.execute("CREATE TABLE policy_results_floor (LIKE policy_results INCLUDING ALL)")
        conn.execute("ALTER TABLE policy_results_floor ADD FOREIGN KEY (asset_id) "
                     "REFERENCES assets (id) ON DELETE CASCADE")
        conn.commit()
        started = time.perf_counter()
        conn.execute(FLOOR_SQL, params)
        conn.commit()
        floor_s = time.perf_counter() - started
        floor = _counts(conn, "policy_results_floor")
        conn.execute("DROP TABLE policy_results_floor")
        conn.commit()

    differences = [f"{control} {status}: product {product.get((control, status), 0):,}, "
                   f"floor {floor.get((control, status), 0):,}"
                   for control, status in sorted(set(product) | set(floor))
                   if product.get((control, status)) != floor.get((control, status))]
    result = PolicyResult("policy evaluation", live, sum(product.values()), product_s, floor_s,
                          differences)
    for difference in differences:
        print(f"  differs: {difference}")
    print(result.line(), flush=True)
    return result
