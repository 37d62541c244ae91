"""Common spellings of asset values, mapped to the values of SPEC §3, shared by every format.

CMDB exports, spreadsheets and scanners spell the same thing many ways (`PostgreSQL`,
`postgres`, `pg`; `Prod`, `PRD`, `live`). One table per field turns them into the enum values
the service layer accepts. A value the table does not know is returned as None: the caller
turns it into a warning and leaves the field out, because a guess would be written into the
inventory as if it were a fact (SPEC §6: "a value that cannot be mapped becomes a row warning,
not a guess").

The enum value lists below mirror `webapp.models.enums` (a test keeps them equal) so this
package needs neither Flask nor SQLAlchemy.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime

ENGINES = (
    "postgresql",
    "mysql",
    "mariadb",
    "mssql",
    "oracle",
    "mongodb",
    "redis",
    "elasticsearch",
    "cassandra",
    "sqlite",
    "db2",
    "dynamodb",
    "other",
)
ENVIRONMENTS = ("production", "staging", "development", "test", "unknown")
STATUSES = ("active", "inactive", "deprecated", "decommissioned", "unknown")
CRITICALITIES = ("low", "medium", "high", "critical")
CLASSIFICATIONS = ("public", "internal", "confidential", "restricted")
CLOUD_PROVIDERS = ("aws", "gcp", "azure", "on_prem", "other")

# Default ports of the engines, used only where the platform fixes the port (Cloud SQL, Azure
# managed servers), never to fill a gap in a scanner's or a person's data.
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433}

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def key(value: str) -> str:
    """The comparison key of a spelling: lower case, letters and digits only
    (`SQL Server` -> `sqlserver`, `Pre-Prod` -> `preprod`)."""
    return _NON_ALNUM.sub("", value.lower())


def _table(groups: dict[str, tuple[str, ...]]) -> dict[str, str]:
    table: dict[str, str] = {}
    for canonical, spellings in groups.items():
        for spelling in (canonical, *spellings):
            table[key(spelling)] = canonical
    return table


ENGINE_SPELLINGS = _table(
    {
        "postgresql": (
            "postgres",
            "pg",
            "pgsql",
            "psql",
            "postgre",
            "postgres sql",
            "postgresdb",
            "aurora postgresql",
            "aurora postgres",
            "azure postgresql",
            "cloud sql postgres",
            "edb",
            "enterprisedb",
            "timescaledb",
        ),
        "mysql": ("my sql", "aurora mysql", "percona", "percona server", "azure mysql"),
        "mariadb": ("maria", "maria db"),
        "mssql": (
            "sql server",
            "sqlserver",
            "ms sql",
            "ms sql server",
            "microsoft sql server",
            "microsoft sql",
            "mssqlserver",
            "azure sql",
            "azure sql database",
            "tsql",
        ),
        "oracle": ("oracle db", "oracle database", "oracledb", "ora", "oracle rdbms"),
        "mongodb": ("mongo", "mongod", "mongo db"),
        "redis": ("redis server",),
        "elasticsearch": ("elastic", "elastic search"),
        "cassandra": ("apache cassandra",),
        "sqlite": ("sqlite3",),
        "db2": ("ibm db2", "db2 luw", "db2 udb", "ibm db2 luw"),
        "dynamodb": ("dynamo", "dynamo db", "amazon dynamodb"),
        "other": (),
    }
)

ENVIRONMENT_SPELLINGS = _table(
    {
        "production": ("prod", "prd", "live", "prod env", "production environment"),
        "staging": ("stg", "stage", "preprod", "pre-production", "pre prod"),
        "development": ("dev", "devel", "develop"),
        "test": ("tst", "testing", "qa", "uat", "sit"),
        "unknown": ("unk",),
    }
)

STATUS_SPELLINGS = _table(
    {
        "active": (
            "in use",
            "in service",
            "operational",
            "running",
            "online",
            "available",
            "enabled",
        ),
        "inactive": ("stopped", "offline", "disabled", "suspended", "paused"),
        "deprecated": ("legacy", "sunset", "eol", "end of life", "retiring"),
        "decommissioned": ("decom", "decommed", "retired", "removed"),
        "unknown": (),
    }
)

CRITICALITY_SPELLINGS = _table(
    {
        # the "N - …" forms are ServiceNow's business_criticality choices
        "low": ("lo", "p4", "4 - not critical", "not critical"),
        "medium": ("med", "mid", "moderate", "p3", "3 - less critical", "less critical"),
        "high": ("hi", "p2", "2 - somewhat critical", "somewhat critical"),
        "critical": (
            "crit",
            "p1",
            "p0",
            "1 - most critical",
            "most critical",
            "mission critical",
            "business critical",
        ),
    }
)

CLASSIFICATION_SPELLINGS = _table(
    {
        "public": (),
        "internal": ("internal use", "internal only", "internal use only", "company internal"),
        "confidential": ("company confidential",),
        "restricted": ("highly restricted",),
    }
)

CLOUD_PROVIDER_SPELLINGS = _table(
    {
        "aws": ("amazon", "amazon web services", "aws cloud"),
        "gcp": ("google", "google cloud", "google cloud platform", "gce"),
        "azure": ("microsoft azure", "ms azure"),
        "on_prem": (
            "on prem",
            "onprem",
            "on premise",
            "on premises",
            "on-premises",
            "datacenter",
            "datacentre",
            "data center",
            "data centre",
            "self hosted",
            "on site",
        ),
        "other": (),
    }
)

_TRUE = frozenset({"true", "t", "yes", "y", "1", "on", "enabled", "enable"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off", "disabled", "disable"})

# trailing words that name an edition, not an engine: "SQL Server 2019 Enterprise"
_EDITIONS = re.compile(
    r"[\s_-]*\b(enterprise|standard|express|developer|community|web|edition|ee|se|se2|ce)\b"
    r"[\s_-]*$",
    re.IGNORECASE,
)
_TRAILING_VERSION = re.compile(
    r"^(?P<name>.*?[a-z0-9])(?:[\s_-]+v?|(?<=[a-z])v?(?=\d))(?P<version>\d+(?:[._]\d+)*[a-z]?)$",
    re.IGNORECASE,
)


def engine(value: str) -> tuple[str | None, str | None]:
    """(engine, version found in the same text) for a spelling such as `PostgreSQL 15.4`,
    `SQL Server 2019 Enterprise` or `mongo`; (None, None) when it cannot be mapped."""
    text = value.strip()
    found = ENGINE_SPELLINGS.get(key(text))
    if found:
        return found, None
    for _ in range(3):  # "Oracle Database 19c Enterprise Edition": drop editions, then version
        stripped = _EDITIONS.sub("", text)
        if stripped == text:
            break
        text = stripped
        found = ENGINE_SPELLINGS.get(key(text))
        if found:
            return found, None
    match = _TRAILING_VERSION.match(text)
    if match:
        found = ENGINE_SPELLINGS.get(key(match["name"]))
        if found:
            return found, match["version"].replace("_", ".")
    return None, None


def environment(value: str) -> str | None:
    return ENVIRONMENT_SPELLINGS.get(key(value))


def status(value: str) -> str | None:
    return STATUS_SPELLINGS.get(key(value))


def criticality(value: str) -> str | None:
    return CRITICALITY_SPELLINGS.get(key(value))


def data_classification(value: str) -> str | None:
    return CLASSIFICATION_SPELLINGS.get(key(value))


def cloud_provider(value: str) -> str | None:
    return CLOUD_PROVIDER_SPELLINGS.get(key(value))


def boolean(value: object) -> bool | None:
    """True/False from a bool, 0/1 or a spelling (`yes`, `N`, `Enabled`…); None otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


# --- hosts ----------------------------------------------------------------------------------

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"^{_OCTET}(?:\.{_OCTET}){{3}}$")


def ip(value: str) -> str | None:
    """The canonical text of an IP address (IPv6 compressed, lower case), or None."""
    text = value.strip()
    if ":" not in text:
        # IPv4 in canonical dotted-quad form (no leading zeros); the regex spares the
        # ipaddress module for the common case, which matters at 100,000 records
        return text if _IPV4.match(text) else None
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        return None


def is_ip(canonical: str) -> bool:
    """Whether a value already returned by `host()` is an IP address (host names never hold
    a colon, and never end in an all-digit label)."""
    return ":" in canonical or bool(_IPV4.match(canonical))


def host(value: str) -> str | None:
    """A host name or IP address in one canonical form, so the same server spelt
    `DB1.Example.COM.` and `db1.example.com` compares equal: DNS names lower-cased without the
    trailing root dot, IP addresses in canonical text. None when it is neither."""
    text = value.strip()
    if not text:
        return None
    address = ip(text)
    if address:
        return address
    name = text.lower().rstrip(".") if text != "." else ""
    if len(name) > 253 or not _HOSTNAME.match(name) or name.rpartition(".")[2].isdigit():
        return None  # an all-digit last label is a malformed address, not a name
    return name


# --- dates ----------------------------------------------------------------------------------


def timestamp(value: str) -> tuple[datetime, bool] | None:
    """(UTC datetime, had_timezone) from ISO 8601 text (`Z` accepted), or None."""
    text = value.strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC), False
    return parsed.astimezone(UTC), True
