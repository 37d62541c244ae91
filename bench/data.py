"""Benchmark data: create and migrate the database, bulk-load realistic assets with COPY.

Building the data is not a measured workload, so rows go in through psycopg 3 COPY rather than
the service layer. Every row is still valid for the model, and `search_text` is computed exactly
as `webapp.services.assets.search_text()` would (checked on a sample after loading).
"""

from __future__ import annotations

import base64
import bisect
import itertools
import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/inventory_bench"
# a fixed key so that data built by one run stays readable by the next
BENCH_KEY = base64.urlsafe_b64encode(b"inventory-bench-fixed-key-32byte").decode()
ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "bench admin password 2026"
SEED = 20261123
# the source label of the built inventory: one no precedence setting lists, so the imports
# `make bench` measures may update any field (a "manual" inventory would turn every differing
# value into a field conflict for review instead, SPEC §6)
SEED_SOURCE = "bench-seed"

APPS = [
    "orders",
    "billing",
    "payments",
    "inventory",
    "catalog",
    "search",
    "auth",
    "accounts",
    "crm",
    "erp",
    "hr",
    "payroll",
    "ledger",
    "analytics",
    "reporting",
    "warehouse",
    "shipping",
    "fulfilment",
    "pricing",
    "checkout",
    "cart",
    "loyalty",
    "marketing",
    "mailer",
    "notifications",
    "fraud",
    "risk",
    "compliance",
    "kyc",
    "support",
    "tickets",
    "chat",
    "media",
    "cms",
    "wiki",
    "sso",
    "gateway",
    "telemetry",
    "metrics",
    "logging",
    "events",
    "scheduler",
    "etl",
    "datalake",
    "features",
    "recommendations",
    "geo",
    "booking",
    "claims",
    "policy",
    "quotes",
    "invoicing",
    "treasury",
    "procurement",
    "vendors",
    "fleet",
    "identity",
    "consent",
    "subscriptions",
    "returns",
]
# engine: (weight, short name used in asset names, default port, versions, has a database name)
ENGINES: dict[str, tuple[int, str, int | None, list[str], bool]] = {
    "postgresql": (30, "pg", 5432, ["12.19", "13.15", "14.12", "15.7", "16.3"], True),
    "mysql": (18, "mysql", 3306, ["5.7.44", "8.0.36", "8.4.0"], True),
    "mariadb": (5, "maria", 3306, ["10.6.18", "10.11.8", "11.4.2"], True),
    "mssql": (10, "sql", 1433, ["2016", "2019", "2022"], True),
    "oracle": (6, "ora", 1521, ["12c", "19c", "21c"], True),
    "mongodb": (8, "mongo", 27017, ["4.4", "5.0", "6.0", "7.0"], True),
    "redis": (8, "redis", 6379, ["6.2", "7.0", "7.2"], False),
    "elasticsearch": (4, "es", 9200, ["7.17", "8.13"], False),
    "cassandra": (2, "cass", 9042, ["3.11", "4.1"], False),
    "sqlite": (1, "lite", None, ["3.45"], False),
    "db2": (1, "db2", 50000, ["11.5"], True),
    "dynamodb": (3, "ddb", None, [""], False),
    "other": (4, "db", 7000, ["1.0", "2.3"], False),
}
ENVIRONMENTS = {"production": 35, "staging": 20, "development": 25, "test": 12, "unknown": 8}
ENV_SHORT = {
    "production": "prod",
    "staging": "stg",
    "development": "dev",
    "test": "test",
    "unknown": "misc",
}
STATUSES = {"active": 75, "inactive": 8, "deprecated": 7, "decommissioned": 5, "unknown": 5}
CRITICALITIES = {None: 10, "low": 25, "medium": 35, "high": 20, "critical": 10}
CLASSIFICATIONS = {None: 15, "public": 10, "internal": 40, "confidential": 25, "restricted": 10}
CLOUDS = {"aws": 45, "gcp": 15, "azure": 15, "on_prem": 25}
REGIONS = {
    "aws": ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"],
    "gcp": ["us-central1", "europe-west1", "asia-east1"],
    "azure": ["westeurope", "eastus", "uksouth"],
    "on_prem": ["dc1", "dc2", "lon3"],
}
# tag name -> (colour, share of tagged assets that get it, relatively)
TAGS = {
    "pci": ("#dc2626", 12),
    "pii": ("#ea580c", 20),
    "gdpr": ("#ca8a04", 14),
    "sox": ("#16a34a", 8),
    "hipaa": ("#0891b2", 4),
    "legacy": ("#6b7280", 10),
    "customer-data": ("#2563eb", 16),
    "backup-exempt": ("#7c3aed", 5),
    "tier-1": ("#db2777", 8),
    "migration-2026": ("#4b5563", 3),
}
FIRST = [
    "alice",
    "bob",
    "carla",
    "dmitri",
    "emeka",
    "fatima",
    "giorgio",
    "hana",
    "ivan",
    "jun",
    "kofi",
    "lena",
    "marta",
    "nikhil",
    "olga",
    "pedro",
    "quinn",
    "rosa",
    "sven",
    "tomas",
]
LAST = [
    "smith",
    "okonkwo",
    "garcia",
    "nakamura",
    "novak",
    "schmidt",
    "rossi",
    "kowalski",
    "haddad",
    "lindqvist",
    "oconnor",
    "mbeki",
    "tanaka",
]
TEAMS = [f"team-{app}" for app in APPS] + [
    "platform-dba",
    "data-engineering",
    "sre",
    "security",
    "finance-it",
    "it-ops",
    "bi",
    "ml-platform",
    "core-services",
    "integration",
    "web-platform",
    "mobile-backend",
    "devex",
    "observability",
    "storage",
    "networking",
    "corp-it",
    "legal-tech",
    "research",
    "partner-apis",
]

ASSET_COLUMNS = (
    "id",
    "name",
    "engine",
    "engine_version",
    "host",
    "port",
    "database_name",
    "aliases",
    "cloud_provider",
    "region",
    "cloud_resource_id",
    "environment",
    "status",
    "owner",
    "criticality",
    "data_classification",
    "encrypted_at_rest",
    "tls_required",
    "publicly_accessible",
    "backup_retention_days",
    "last_backup_at",
    "deletion_protection",
    "metadata",
    "notes",
    "source",
    "first_seen_at",
    "last_seen_at",
    "locked_fields",
    "version",
    "deleted_at",
    "search_text",
    "created_at",
    "updated_at",
)


def owners() -> list[str]:
    """About 200 distinct owners: team names and people's addresses."""
    people = [f"{f}.{l}@example.com" for f in FIRST for l in LAST]  # noqa: E741
    people = people[:: max(1, len(people) // 120)][:120]
    return TEAMS + people


def conninfo(url: str, dbname: str | None = None) -> str:
    """A libpq URI for psycopg from a SQLAlchemy URL (optionally for another database)."""
    parsed = make_url(url).set(drivername="postgresql")
    if dbname is not None:
        parsed = parsed.set(database=dbname)
    return parsed.render_as_string(hide_password=False)


def ensure_database(url: str) -> bool:
    """Create the database if it is missing; True when it was created."""
    name = make_url(url).database
    if not name:
        raise SystemExit(f"BENCH_DATABASE_URL names no database: {url}")
    with psycopg.connect(conninfo(url, "postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def app_config(url: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "bench-secret-key",
        "SQLALCHEMY_DATABASE_URI": url,
        "INVENTORY_ENCRYPTION_KEYS": [BENCH_KEY],
        "INVENTORY_ENCRYPTION_PASSPHRASE": None,
        "WTF_CSRF_ENABLED": False,
        "SESSION_COOKIE_SECURE": False,
        "REDIS_URL": None,
        # the bench signs in once; generous limits keep a rerun from locking itself out
        "LOGIN_MAX_FAILURES": 1000,
        "LOGIN_IP_MAX_FAILURES": 1000,
        "LOGIN_LOCKOUT_SECONDS": 1,
    }


class Weighted:
    """A weighted choice with the cumulative weights computed once (random.choices redoes them)."""

    def __init__(self, weighted: dict[Any, float]) -> None:
        self.values = list(weighted)
        self.cum = list(itertools.accumulate(weighted.values()))
        self.total = self.cum[-1]

    def __call__(self, rng: random.Random) -> Any:
        return self.values[bisect.bisect_right(self.cum, rng.random() * self.total)]


@dataclass
class Generated:
    assets: int
    tag_links: int
    phases: dict[str, float]


def search_text(
    name: str,
    host: str | None,
    database_name: str | None,
    owner: str | None,
    aliases: list[str],
    tag_names: list[str],
) -> str:
    """Mirror of webapp.services.assets.search_text (tags ordered by name, as the model loads them)."""
    parts = [name, host or "", database_name or "", owner or ""]
    parts += aliases
    parts += sorted(tag_names)
    return " ".join(p for p in parts if p).lower()


def generate(
    n: int, tag_ids: dict[str, int], now: datetime
) -> Iterator[tuple[tuple[Any, ...], list[int]]]:
    """Yield (asset row in ASSET_COLUMNS order, tag ids) for n realistic assets, deterministically."""
    rng = random.Random(SEED)
    owner_list = owners()
    rng.shuffle(owner_list)
    # a skewed spread: a few owners hold many assets, most hold a few hundred or fewer
    pick_owner = Weighted({o: 1.0 / (i + 1) ** 0.7 for i, o in enumerate(owner_list)})
    pick_engine = Weighted({e: spec[0] for e, spec in ENGINES.items()})
    pick_tag = Weighted({t: spec[1] for t, spec in TAGS.items()})
    pick_env, pick_status = Weighted(ENVIRONMENTS), Weighted(STATUSES)
    pick_criticality, pick_classification = Weighted(CRITICALITIES), Weighted(CLASSIFICATIONS)
    pick_cloud = Weighted(CLOUDS)
    pick_aliases, pick_tag_count = (
        Weighted({0: 50, 1: 35, 2: 15}),
        Weighted({0: 40, 1: 30, 2: 20, 3: 10}),
    )
    three_years = 3 * 365 * 86400
    for i in range(n):
        engine = pick_engine(rng)
        _, short, port, versions, has_db = ENGINES[engine]
        app = rng.choice(APPS)
        env = pick_env(rng)
        name = f"{app}-{short}-{ENV_SHORT[env]}-{rng.randint(1, 40):02d}"
        cloud = pick_cloud(rng)
        region = rng.choice(REGIONS[cloud])
        if engine == "dynamodb" and cloud != "aws":
            cloud = "aws"
            region = rng.choice(REGIONS["aws"])
        if cloud == "aws":
            service = (
                "dynamodb" if engine == "dynamodb" else ("cache" if engine == "redis" else "rds")
            )
            host = (
                f"dynamodb.{region}.amazonaws.com"
                if engine == "dynamodb"
                else f"{name}.c{rng.randrange(16**8):08x}.{region}.{service}.amazonaws.com"
            )
            resource = f"arn:aws:{service}:{region}:{rng.choice(['1234', '5678', '9012'])}00000000:db:{name}-{i}"
        elif cloud == "gcp":
            host = f"{name}.{region}.gcp.example.net"
            resource = f"projects/{app}-{ENV_SHORT[env]}/instances/{name}-{i}"
        elif cloud == "azure":
            host = f"{name}.{'database' if has_db else 'cache'}.windows.net"
            resource = f"/subscriptions/sub-{app}/resourceGroups/{ENV_SHORT[env]}/providers/{engine}/{name}-{i}"
        else:
            host = f"db{rng.randrange(10000):04d}.{region}.corp.example.com"
            resource = None
        if engine == "sqlite":
            host = None
        elif rng.random() < 0.04:
            host = None  # not yet known
        port_value = port if port is None or rng.random() > 0.1 else port + rng.randint(1, 9)
        if host is None:
            port_value = None
        database_name = f"{app}_{ENV_SHORT[env]}" if has_db and rng.random() < 0.9 else None
        owner = pick_owner(rng) if rng.random() > 0.05 else None
        aliases: list[str] = []
        for _ in range(pick_aliases(rng)):
            kind = rng.random()
            if kind < 0.4:
                aliases.append(
                    f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                )
            elif kind < 0.75:
                aliases.append(f"{app}-{ENV_SHORT[env]}.db.corp.example.com")
            else:
                aliases.append(f"legacy-{app}-{rng.randrange(100)}")
        k = pick_tag_count(rng)
        tags: set[str] = set()
        while len(tags) < k:
            tags.add(pick_tag(rng))
        created = now - timedelta(seconds=rng.randrange(three_years))
        updated = created + timedelta(
            seconds=rng.randrange(int((now - created).total_seconds()) + 1)
        )
        seen = rng.random() < 0.6
        last_seen = now - timedelta(days=rng.random() ** 3 * 120) if seen else None
        deleted_at = updated if rng.random() < 0.01 else None
        status = pick_status(rng)
        row = (
            _uuid4_from(rng),
            name,
            engine,
            rng.choice(versions) or None,
            host,
            port_value,
            database_name,
            json.dumps(aliases),
            cloud,
            region,
            resource,
            env,
            status,
            owner,
            pick_criticality(rng),
            pick_classification(rng),
            rng.random() < 0.85 if rng.random() < 0.9 else None,
            rng.random() < 0.7 if rng.random() < 0.9 else None,
            rng.random() < 0.03,
            rng.choice((None, 7, 14, 30, 35)),
            now - timedelta(hours=rng.randrange(1, 72)) if rng.random() < 0.7 else None,
            rng.random() < 0.5 if env == "production" else False,
            json.dumps(
                {
                    "cost_center": f"CC-{rng.randrange(100, 999)}",
                    "managed_by": rng.choice(("terraform", "ansible", "manual")),
                }
            ),
            "Migrated from the old CMDB." if rng.random() < 0.05 else None,
            SEED_SOURCE,
            created if seen else None,
            last_seen,
            "[]",
            1,
            deleted_at,
            search_text(name, host, database_name, owner, aliases, list(tags)),
            created,
            updated,
        )
        yield row, [tag_ids[t] for t in sorted(tags)]


def _uuid4_from(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(bytes=rng.randbytes(16), version=4)


def truncate_all(conn: psycopg.Connection) -> None:
    """Empty every data table. audit_events refuses TRUNCATE, UPDATE and DELETE through
    triggers; the bench's superuser session switches them off for this one transaction."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
    ]
    if tables:
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in tables)
            )
        )
        conn.execute("SET LOCAL session_replication_role = origin")


# secondary indexes are dropped for the COPY and rebuilt after it (much faster than maintaining
# them row by row, the trigram GIN index above all); constraint indexes (keys, unique) stay
SECONDARY_INDEXES = """
SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
ORDER BY i.indexname
"""


def drop_secondary_indexes(conn: Any, tables: list[str]) -> list[tuple[str, str]]:
    """Drop the tables' secondary indexes (in the caller's transaction); returns them, for
    `rebuild_indexes` after the load."""
    indexes = conn.execute(SECONDARY_INDEXES, (tables,)).fetchall()
    for name, _ in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    return indexes


def rebuild_indexes(conn: Any, indexes: list[tuple[str, str]]) -> None:
    conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for _, definition in indexes:
        conn.execute(definition)


def identifier_keys(row: tuple[Any, ...]) -> list[str]:
    """The asset's strong identifiers, as the service layer writes them."""
    from webapp.services.identifiers import keys_for

    fields = dict(zip(ASSET_COLUMNS, row, strict=True))
    fields["aliases"] = json.loads(fields["aliases"])
    return list(dict.fromkeys(keys_for(fields)))


def load(url: str, n: int) -> Generated:
    """Truncate and COPY n assets (and their tags) into the database, then VACUUM ANALYZE.

    All in one transaction (PostgreSQL DDL is transactional): a failed or interrupted build
    leaves the previous data and every index as they were.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    with psycopg.connect(conninfo(url)) as conn:
        truncate_all(conn)
        indexes = drop_secondary_indexes(conn, ["assets", "asset_tags", "asset_identifiers"])
        tag_ids: dict[str, int] = {}
        for name, (colour, _) in TAGS.items():
            tag_ids[name] = conn.execute(
                "INSERT INTO tags (name, colour) VALUES (%s, %s) RETURNING id", (name, colour)
            ).fetchone()[0]
        links: list[tuple[uuid.UUID, int]] = []
        keys: list[tuple[uuid.UUID, str]] = []
        cur = conn.cursor()
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in ASSET_COLUMNS)
        with cur.copy(sql.SQL("COPY assets ({}) FROM STDIN").format(cols)) as copy:
            for row, tags in generate(n, tag_ids, now):
                copy.write_row(row)
                links.extend((row[0], t) for t in tags)
                keys.extend((row[0], k) for k in identifier_keys(row))
        with cur.copy("COPY asset_tags (asset_id, tag_id) FROM STDIN") as copy:
            for link in links:
                copy.write_row(link)
        with cur.copy("COPY asset_identifiers (key, asset_id) FROM STDIN") as copy:
            for asset_id, key in keys:
                copy.write_row((key, asset_id))
        phases["generate+copy"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rebuild_indexes(conn, indexes)
        conn.commit()
        phases["indexes"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) assets")
        conn.execute("VACUUM (ANALYZE) asset_tags")
        conn.execute("VACUUM (ANALYZE) asset_identifiers")
        conn.execute("ANALYZE tags")
    phases["vacuum"] = time.perf_counter() - t0
    return Generated(n, len(links), phases)


def asset_count(url: str) -> int:
    with psycopg.connect(conninfo(url)) as conn:
        return conn.execute("SELECT count(*) FROM assets").fetchone()[0]


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0
