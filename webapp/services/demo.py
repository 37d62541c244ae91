"""A realistic sample inventory, created through the asset service."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import Asset, PolicyResult, PolicyStatus
from webapp.models.base import utcnow
from webapp.services import assets, policy_exceptions, relationships
from webapp.services.actor import Actor

TEAMS = ["payments", "identity", "search", "data-platform", "billing", "growth", "logistics",
         "risk", "support-tools", "ml-platform"]
SYSTEMS = ["orders", "ledger", "sessions", "catalog", "events", "invoices", "users", "audit",
           "inventory", "pricing", "shipments", "fraud", "reports", "notifications", "cart"]
ENGINES = [("postgresql", 5432, ["13.14", "14.11", "15.6", "16.2"]),
           ("mysql", 3306, ["5.7.44", "8.0.36"]), ("mariadb", 3306, ["10.6.16", "10.11.6"]),
           ("mssql", 1433, ["2019", "2022"]), ("oracle", 1521, ["19c", "21c"]),
           ("mongodb", 27017, ["6.0.13", "7.0.5"]), ("redis", 6379, ["6.2.14", "7.2.4"]),
           ("elasticsearch", 9200, ["7.17.18", "8.12.1"]), ("cassandra", 9042, ["4.0.12", "4.1.4"])]
ENVIRONMENTS = [("production", 0.35), ("staging", 0.2), ("development", 0.25), ("test", 0.15),
                ("unknown", 0.05)]
REGIONS = {"aws": ["eu-west-1", "us-east-1", "eu-central-1"], "gcp": ["europe-west1", "us-central1"],
           "azure": ["westeurope", "eastus"], "on_prem": ["dc-ams", "dc-fra"]}
CLASSIFICATIONS = ["public", "internal", "confidential", "restricted"]
# service-level dependencies between systems' primary databases (one pair is a cycle, which the
# app flags on both assets)
SYSTEM_LINKS = [("orders", "depends_on", "users"), ("orders", "depends_on", "inventory"),
                ("cart", "depends_on", "pricing"), ("cart", "depends_on", "catalog"),
                ("invoices", "depends_on", "ledger"), ("ledger", "depends_on", "invoices"),
                ("fraud", "depends_on", "orders"), ("shipments", "depends_on", "orders"),
                ("events", "feeds", "reports"), ("orders", "feeds", "events"),
                ("notifications", "depends_on", "users"), ("audit", "backs_up_to", "reports")]
RELATIONAL = ("postgresql", "mysql", "mariadb", "mssql", "oracle")

TAGS = ["pci", "gdpr", "sox", "tier-1", "legacy", "migrating", "read-heavy", "analytics",
        "team=core", "backup=daily"]


def load(session: Session, count: int = 240, seed: int = 7) -> int:
    rng = random.Random(seed)
    # posture nobody knows, backups and owners: drawn apart, so the rest stays as it was
    posture = random.Random(seed + 1)
    now = utcnow()
    actor = Actor.system("demo")
    made: dict[str, list[Asset]] = {}
    for i in range(count):
        engine, port, versions = rng.choice(ENGINES)
        env = rng.choices([e for e, _ in ENVIRONMENTS], [w for _, w in ENVIRONMENTS])[0]
        system, team = rng.choice(SYSTEMS), rng.choice(TEAMS)
        provider = rng.choice(list(REGIONS))
        region = rng.choice(REGIONS[provider])
        short = {"production": "prod", "staging": "stg", "development": "dev", "test": "test"}.get(env, "misc")
        name = f"{system}-{short}-{engine[:5]}-{i:03d}"
        host = (f"{system}-{i:03d}.{region}.{'rds.amazonaws.com' if provider == 'aws' else 'db.internal'}")
        data = {
            "name": name,
            "engine": engine,
            "engine_version": rng.choice(versions),
            "host": host,
            "port": port,
            "database_name": system if engine not in ("redis", "elasticsearch") else None,
            "aliases": [f"10.{rng.randint(0, 40)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"],
            "cloud_provider": provider,
            "region": region,
            "cloud_resource_id": (
                f"arn:aws:rds:{region}:123456789012:db:{name}" if provider == "aws" else None
            ),
            "environment": env,
            "status": rng.choices(["active", "inactive", "deprecated", "decommissioned"],
                                  [0.82, 0.06, 0.08, 0.04])[0],
            "owner": f"{team}@example.com",
            "criticality": rng.choices(["low", "medium", "high", "critical"],
                                       [0.2, 0.4, 0.28, 0.12])[0] if env == "production"
            else rng.choice(["low", "medium"]),
            "data_classification": rng.choice(CLASSIFICATIONS),
            "encrypted_at_rest": rng.random() > 0.15,
            "tls_required": rng.random() > 0.3,
            "publicly_accessible": rng.random() < 0.05,
            "backup_retention_days": rng.choice([0, 1, 7, 14, 35]),
            "deletion_protection": env == "production" and rng.random() > 0.2,
            "tags": rng.sample(TAGS, rng.randint(0, 3)),
            "notes": f"Primary store for the {system} service of team {team}.",
        }
        _vary_posture(posture, data, now)
        made.setdefault(system, []).append(assets.create(session, actor, data))
    _relate(session, actor, made)
    _grant_exceptions(session, actor, now)
    return count


def _vary_posture(rng: random.Random, data: dict[str, Any], now: datetime) -> None:
    """What a real inventory looks like to the policy controls: some posture not known yet
    (unknown, never pass), recent and old backups, a few production databases nobody owns."""
    for name in ("encrypted_at_rest", "tls_required", "backup_retention_days"):
        if rng.random() < 0.1:
            data[name] = None
    if data["backup_retention_days"] and rng.random() < 0.8:
        data["last_backup_at"] = now - timedelta(hours=rng.choice([2, 6, 20, 30, 80]))
    if data["environment"] == "production" and rng.random() < 0.05:
        data["owner"] = None


EXCEPTIONS = (
    ("encryption.at_rest", "Legacy storage engine without encryption; replaced by the Q3 migration.", 120),
    ("backup.retention", "Rebuilt nightly from the event stream; longer retention adds nothing.", 300),
)


def _grant_exceptions(session: Session, actor: Actor, now: datetime) -> None:
    """Two exceptions, as a reviewer would grant them, on the first assets failing each control."""
    for control_id, reason, days in EXCEPTIONS:
        failing = session.scalar(
            select(PolicyResult.asset_id)
            .where(PolicyResult.control_id == control_id, PolicyResult.status == PolicyStatus.fail)
            .order_by(PolicyResult.asset_id).limit(1))
        if failing is not None:
            policy_exceptions.grant(session, actor, failing, control_id, reason=reason,
                                    expires_at=now + timedelta(days=days), now=now)


def _relate(session: Session, actor: Actor, made: dict[str, list[Asset]]) -> None:
    """Each system's first relational database is its primary: same-engine production copies
    are its replicas, caches and document stores depend on it, search indexes are fed by it."""
    primaries: dict[str, Asset] = {}
    for system, group in made.items():
        relational = [a for a in group if a.engine.value in RELATIONAL]
        if not relational:
            continue
        primary = next((a for a in relational if a.environment.value == "production"), relational[0])
        primaries[system] = primary
        for other in group:
            if other is primary or other.environment != primary.environment:
                continue
            if other.engine == primary.engine:
                link = (primary, "replicates_to", other)
            elif other.engine.value == "elasticsearch":
                link = (primary, "feeds", other)
            else:
                link = (other, "depends_on", primary)
            _link(session, actor, *link)
    for source, kind, target in SYSTEM_LINKS:
        if source in primaries and target in primaries:
            _link(session, actor, primaries[source], kind, primaries[target])


def _link(session: Session, actor: Actor, source: Asset, kind: str, target: Asset) -> None:
    relationships.create(session, actor, source_id=source.id, target_id=target.id, kind=kind)
