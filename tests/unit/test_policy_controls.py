"""Each built-in policy control (webapp/policy/): pass, fail and unknown, which assets it applies
to, and its framework mapping. No database: checks run on `AssetFacts`."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.unit.policy_helpers import NOW, facts
from webapp.models.enums import (
    AssetStatus,
    Criticality,
    Engine,
    Environment,
    RelationshipKind,
)
from webapp.policy import CONTROLS, FRAMEWORKS, AssetFacts, Context, Neighbour, Status
from webapp.policy.graph import GRAPH_NOT_LOADED

PASS, FAIL, UNKNOWN = Status.pass_, Status.fail, Status.unknown


def context(neighbours=None, parameters=None, stale_after_days=30) -> Context:  # type: ignore[no-untyped-def]
    return Context.build(
        now=NOW,
        parameters=parameters,
        stale_after_days=stale_after_days,
        neighbours={} if neighbours is None else neighbours,
    )


def run(control_id: str, asset: AssetFacts, ctx: Context | None = None):  # type: ignore[no-untyped-def]
    control = CONTROLS[control_id]
    assert control.applies_to(asset), f"{control_id} should apply to {asset}"
    return control.check(asset, ctx or context())


# (control id, {framework: ids that must be among its references})
MAPPINGS = {
    "encryption.at_rest": {"soc2": {"CC6.1"}, "gdpr": {"Art. 32(1)(a)"}, "aws_fsbp": {"RDS.3"}},
    "encryption.tls_required": {"soc2": {"CC6.7"}, "gdpr": {"Art. 32(1)(a)"}},
    "network.not_public": {"soc2": {"CC6.6"}, "aws_fsbp": {"RDS.2"}, "cis_aws": {"2.3.3"}},
    "backup.retention": {"soc2": {"A1.2"}, "aws_fsbp": {"RDS.11"}},
    "backup.recent": {"soc2": {"A1.2"}, "gdpr": {"Art. 32(1)(c)"}},
    "backup.deletion_protection": {"aws_fsbp": {"RDS.8"}},
    "ownership.owner_set": {"soc2": {"CC6.1"}},
    "ownership.classified": {"soc2": {"CC6.1"}},
    "lifecycle.not_stale": {"soc2": {"CC7.1"}},
    "lifecycle.not_unverified": {"soc2": {"CC7.1"}},
    "lifecycle.engine_supported": {"soc2": {"CC7.1"}, "cis_controls": {"2.2"}},
    "graph.prod_depends_on_prod": {"soc2": {"A1.2"}},
    "graph.critical_has_copy": {"soc2": {"A1.2"}},
}


def test_every_control_is_tested_here_and_mapped():
    assert set(MAPPINGS) == set(CONTROLS)
    for control_id, expected in MAPPINGS.items():
        refs = CONTROLS[control_id].references
        for framework, ids in expected.items():
            assert framework in FRAMEWORKS
            assert ids <= set(refs[framework]), (control_id, framework)


# Encryption and network ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("control_id", "field", "good", "bad", "missing_reason", "bad_reason"),
    [
        (
            "encryption.at_rest",
            "encrypted_at_rest",
            True,
            False,
            "encryption at rest not known",
            "storage is not encrypted at rest",
        ),
        (
            "encryption.tls_required",
            "tls_required",
            True,
            False,
            "whether TLS is required is not known",
            "connections without TLS are accepted",
        ),
        (
            "network.not_public",
            "publicly_accessible",
            False,
            True,
            "public accessibility not known",
            "the database is publicly accessible",
        ),
    ],
)
def test_boolean_posture_controls(control_id, field, good, bad, missing_reason, bad_reason):
    assert run(control_id, facts(**{field: good})).status is PASS
    assert run(control_id, facts(**{field: bad})) == (FAIL, bad_reason)
    # missing posture data is unknown, never pass
    assert run(control_id, facts(**{field: None})) == (UNKNOWN, missing_reason)
    # they apply in every environment
    assert CONTROLS[control_id].applies_to(facts(environment=Environment.development))


@pytest.mark.parametrize("control_id", list(MAPPINGS))
def test_no_control_applies_to_trashed_merged_or_decommissioned_assets(control_id):
    control = CONTROLS[control_id]
    assert not control.applies_to(facts(deleted_at=NOW, criticality=Criticality.critical))
    assert not control.applies_to(facts(merged_into=uuid.uuid4()))
    assert not control.applies_to(facts(status=AssetStatus.decommissioned))


# Backups ------------------------------------------------------------------------------------


def test_backup_retention_by_criticality():
    high = facts(criticality=Criticality.high)
    assert run("backup.retention", replace(high, backup_retention_days=7)).status is PASS
    assert run("backup.retention", replace(high, backup_retention_days=3)) == (
        FAIL,
        "backup retention is 3 days; at least 7 are required for a high-criticality "
        "production database",
    )
    assert run("backup.retention", replace(high, backup_retention_days=None)) == (
        UNKNOWN,
        "backup retention not known",
    )
    critical = facts(criticality=Criticality.critical, backup_retention_days=7)
    assert run("backup.retention", critical).reason.startswith(
        "backup retention is 7 days; at least 14 are required"
    )
    assert run("backup.retention", facts(criticality=Criticality.low, backup_retention_days=1)) == (
        PASS,
        "backup retention is 1 day; a low-criticality production database needs at least 1",
    )
    off = run("backup.retention", facts(backup_retention_days=0))
    assert off.status is FAIL and "automated backups are off" in off.reason


def test_backup_retention_without_criticality():
    # enough for the strictest criticality: pass whatever it turns out to be
    assert run("backup.retention", facts(criticality=None, backup_retention_days=30)).status is PASS
    result = run("backup.retention", facts(criticality=None, backup_retention_days=3))
    assert result.status is UNKNOWN and "criticality is not set" in result.reason


def test_backup_retention_parameters_change_the_minimum():
    ctx = context(parameters={"backup.retention": {"min_days_high": 30}})
    result = run("backup.retention", facts(backup_retention_days=14), ctx)
    assert result == (
        FAIL,
        "backup retention is 14 days; at least 30 are required for a high-criticality "
        "production database",
    )


def test_backup_controls_apply_to_production_only():
    for control_id in ("backup.retention", "backup.recent", "backup.deletion_protection"):
        for env in (Environment.staging, Environment.development, Environment.unknown):
            assert not CONTROLS[control_id].applies_to(facts(environment=env))


def test_recent_backup_for_high_and_critical():
    control = CONTROLS["backup.recent"]
    assert not control.applies_to(facts(criticality=Criticality.medium))
    assert not control.applies_to(facts(criticality=None))
    assert run("backup.recent", facts(last_backup_at=NOW - timedelta(hours=25))).status is PASS
    assert run("backup.recent", facts(last_backup_at=NOW - timedelta(hours=30))) == (
        FAIL,
        "last backup was 30 hours ago; a high-criticality production database needs one "
        "within 26 hours",
    )
    old = run(
        "backup.recent",
        facts(criticality=Criticality.critical, last_backup_at=NOW - timedelta(days=9)),
    )
    assert old.status is FAIL and old.reason.startswith("last backup was 9 days ago; a critical")
    assert run("backup.recent", facts(last_backup_at=None)) == (
        UNKNOWN,
        "time of the last backup not known",
    )
    # a clock a little ahead on the source's side is not an old backup
    assert run("backup.recent", facts(last_backup_at=NOW + timedelta(minutes=5))).status is PASS
    ctx = context(parameters={"backup.recent": {"max_age_hours_high": 48}})
    assert run("backup.recent", facts(last_backup_at=NOW - timedelta(hours=30)), ctx).status is PASS


def test_deletion_protection_in_production():
    assert run("backup.deletion_protection", facts()).status is PASS
    assert run("backup.deletion_protection", facts(deletion_protection=False)) == (
        FAIL,
        "deletion protection is off for a production database",
    )
    assert run("backup.deletion_protection", facts(deletion_protection=None)) == (
        UNKNOWN,
        "deletion protection not known",
    )


# Ownership ----------------------------------------------------------------------------------


def test_owner_set():
    assert run("ownership.owner_set", facts()) == (PASS, "owned by payments-team")
    assert run("ownership.owner_set", facts(owner=None)) == (FAIL, "no owner is set")
    # never unknown: a blank owner is the inventory's own gap, a fail
    assert run("ownership.owner_set", facts(owner="  ")).status is FAIL
    assert CONTROLS["ownership.owner_set"].applies_to(facts(environment=Environment.test))


def test_criticality_and_classification_in_production():
    control_id = "ownership.classified"
    assert run(control_id, facts()).status is PASS
    assert run(control_id, facts(criticality=None)) == (FAIL, "criticality is not set")
    assert run(control_id, facts(data_classification=None)) == (
        FAIL,
        "data classification is not set",
    )
    assert run(control_id, facts(criticality=None, data_classification=None)).status is FAIL
    assert not CONTROLS[control_id].applies_to(facts(environment=Environment.staging))


# Lifecycle: stale, unverified ---------------------------------------------------------------


def test_not_stale():
    """SPEC §6: stale means missed by covering scans for stale_after_days, not merely unseen."""
    control_id = "lifecycle.not_stale"
    old = NOW - timedelta(days=90)
    # long unseen, but no scan that covered it missed it: not stale
    assert run(control_id, facts(last_seen_at=old)) == (
        PASS, "last seen by discovery 90 days ago; no scan that covered it has missed it since")
    assert run(control_id, facts(last_seen_at=old, missed_since=NOW - timedelta(days=29))).status is PASS
    assert run(control_id, facts(last_seen_at=old, missed_since=NOW - timedelta(days=45))) == (
        FAIL,
        "missed by scans that covered its host and port, or its cloud account and region, for 45 days "
        "(last seen by discovery 90 days ago); active assets missed for 30 days are stale",
    )
    unknown_status = facts(status=AssetStatus.unknown, last_seen_at=old, missed_since=NOW - timedelta(days=45))
    result = run(control_id, unknown_status)
    assert result.status is UNKNOWN and result.reason.startswith("status not known")
    # the setting moves the line
    ctx = context(stale_after_days=60)
    assert run(control_id, facts(last_seen_at=old, missed_since=NOW - timedelta(days=45)), ctx).status is PASS


def test_stale_applies_to_active_assets_seen_before():
    control = CONTROLS["lifecycle.not_stale"]
    # never seen: unverified, not stale (SPEC §6)
    assert not control.applies_to(facts(first_seen_at=None, last_seen_at=None))
    assert not control.applies_to(facts(status=AssetStatus.inactive))
    assert not control.applies_to(facts(status=AssetStatus.deprecated))


def test_not_unverified():
    control_id = "lifecycle.not_unverified"
    assert run(control_id, facts()).status is PASS
    assert run(control_id, facts(first_seen_at=None, last_seen_at=None)) == (
        FAIL,
        "never seen by any discovery import; known only from manual entry",
    )
    # never unknown: "never seen" is the fact reported; it applies to inactive assets too
    assert CONTROLS[control_id].applies_to(facts(status=AssetStatus.inactive))


# Lifecycle: engine version ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "version", "status", "reason"),
    [
        (Engine.postgresql, "16.4", PASS, "postgresql 16 is supported until 2028-11-09"),
        (Engine.postgresql, "13.9", FAIL, "postgresql 13 reached end of life on 2025-11-13"),
        (
            Engine.mysql,
            "8.0.36-0ubuntu0.22.04.1",
            FAIL,
            "mysql 8.0 reached end of life on 2026-04-30",
        ),
        (Engine.mysql, "8.4.2", PASS, "mysql 8.4 is supported until 2032-04-30"),
        (Engine.mongodb, "6.0.14", FAIL, "mongodb 6.0 reached end of life on 2025-07-31"),
        (Engine.mongodb, "7.0.12", PASS, "mongodb 7.0 is supported until 2027-08-31"),
        (
            Engine.mariadb,
            "5.5.5-10.11.6-MariaDB",
            PASS,
            "mariadb 10.11 is supported until 2028-02-16",
        ),
        (
            Engine.mssql,
            "Microsoft SQL Server 2016 (SP3) - 13.0.6300.2",
            FAIL,
            "mssql 13 reached end of life on 2026-07-14",
        ),
        (Engine.mssql, "15.0.4322.2", PASS, "mssql 15 is supported until 2030-01-08"),
        (Engine.oracle, "19c", PASS, "oracle 19 is supported until 2029-12-31"),
        (Engine.redis, "6.0.16", FAIL, "redis 6.0 reached end of life on 2022-05-31"),
        (Engine.elasticsearch, "7.17.3", FAIL, "elasticsearch 7 reached end of life on 2026-01-15"),
        (
            Engine.cassandra,
            "4.1.3",
            PASS,
            "cassandra 4.1 is supported; no end of life announced (as of 2026-12-07)",
        ),
        (Engine.db2, "11.5.9", PASS, "db2 11.5 is supported until 2027-04-30"),
    ],
)
def test_engine_supported(engine, version, status, reason):
    assert run("lifecycle.engine_supported", facts(engine=engine, engine_version=version)) == (
        status,
        reason,
    )


@pytest.mark.parametrize(
    ("engine", "version", "status", "reason_start"),
    [
        (Engine.postgresql, None, UNKNOWN, "engine version not known"),
        (Engine.postgresql, "", UNKNOWN, "engine version not known"),
        (Engine.postgresql, "latest", UNKNOWN, "no version number in 'latest'"),
        (Engine.postgresql, "27.1", UNKNOWN, "postgresql 27.1 is not in the end-of-life table"),
        (Engine.other, "1.2", UNKNOWN, "engine not known"),
        (Engine.mysql, "8", UNKNOWN, "mysql 8 could be any of 8.0, 8.1, 8.2, 8.3, 8.4"),
        (Engine.oracle, "12c", FAIL, "every oracle 12.x release reached end of life"),
        (Engine.elasticsearch, "8.11.0", FAIL, "elasticsearch 8.11.0 is older than 8.16"),
        (Engine.postgresql, "8.4.22", FAIL, "postgresql 8.4.22 is older than 9.0"),
    ],
)
def test_engine_supported_unclear_versions(engine, version, status, reason_start):
    result = run("lifecycle.engine_supported", facts(engine=engine, engine_version=version))
    assert result.status is status
    assert result.reason.startswith(reason_start), result.reason


def test_engine_supported_lead_time_parameter_and_versionless_engines():
    ctx = context(parameters={"lifecycle.engine_supported": {"fail_days_before_eol": 365}})
    result = run("lifecycle.engine_supported", facts(engine_version="15.8"), ctx)
    assert result == (
        FAIL,
        "postgresql 15 reaches end of life on 2027-11-11, in 339 days; upgrades are due "
        "365 days before",
    )
    assert not CONTROLS["lifecycle.engine_supported"].applies_to(
        facts(engine=Engine.dynamodb, engine_version=None)
    )


# Graph --------------------------------------------------------------------------------------


def neighbour(kind, direction, **fields) -> Neighbour:  # type: ignore[no-untyped-def]
    return Neighbour(RelationshipKind(kind), direction, facts(**fields))


def test_production_must_not_depend_on_non_production():
    control_id = "graph.prod_depends_on_prod"
    asset = facts()
    prod_dep = neighbour("depends_on", "out", name="auth-db")
    staging_dep = neighbour("depends_on", "out", name="cache", environment=Environment.staging)
    dev_dep = neighbour("depends_on", "out", name="scratch", environment=Environment.development)
    dependent = neighbour("depends_on", "in", name="etl", environment=Environment.test)
    trashed = neighbour(
        "depends_on", "out", name="gone", environment=Environment.test, deleted_at=NOW
    )

    def check(*ns):  # type: ignore[no-untyped-def]
        return run(control_id, asset, context(neighbours={asset.id: list(ns)}))

    assert check() == (PASS, "depends on nothing in the inventory")
    assert check(prod_dep, dependent, trashed) == (
        PASS,
        "its one dependency, auth-db, is in production",
    )
    assert check(prod_dep, staging_dep, dev_dep) == (
        FAIL,
        "depends on 2 non-production assets: cache (staging), scratch (development)",
    )
    unclear = neighbour("depends_on", "out", name="mystery", environment=Environment.unknown)
    assert check(prod_dep, unclear) == (
        UNKNOWN,
        "depends on 1 asset whose environment is not known: mystery (unknown)",
    )
    # no graph given at all: unknown, not pass
    no_graph = Context.build(now=NOW, neighbours=None)
    assert run(control_id, asset, no_graph) == (UNKNOWN, GRAPH_NOT_LOADED)
    assert not CONTROLS[control_id].applies_to(facts(environment=Environment.staging))


def test_critical_asset_needs_a_replica_or_backup_target():
    control_id = "graph.critical_has_copy"
    asset = facts(criticality=Criticality.critical)
    assert not CONTROLS[control_id].applies_to(facts(criticality=Criticality.high))

    def check(*ns):  # type: ignore[no-untyped-def]
        return run(control_id, asset, context(neighbours={asset.id: list(ns)}))

    assert check(neighbour("depends_on", "out")) == (
        FAIL,
        "a critical asset with no replica (replicates_to) and no backup target (backs_up_to) "
        "in the inventory",
    )
    assert check(neighbour("replicates_to", "out", name="orders-db-replica")) == (
        PASS,
        "replicates to orders-db-replica",
    )
    assert check(neighbour("backs_up_to", "out", name="vault")) == (PASS, "backs up to vault")
    assert check(neighbour("replicates_to", "in", name="orders-primary")) == (
        PASS,
        "replica of orders-primary",
    )
    # being someone's backup target is not a copy of one's own data; a trashed replica is gone
    assert check(neighbour("backs_up_to", "in")).status is FAIL
    assert check(neighbour("replicates_to", "out", deleted_at=NOW)).status is FAIL
    assert run(control_id, asset, Context.build(now=NOW)) == (UNKNOWN, GRAPH_NOT_LOADED)
