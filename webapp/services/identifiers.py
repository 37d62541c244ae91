"""The keys an asset is found by during discovery (SPEC §6).

Each asset has a row in `asset_identifiers` per key. Strong identifiers:

* `cloud:<cloud_resource_id>`: an ARN, a self-link or an Azure id (Azure ids lower-cased);
* `ep:<host>:<port>` for its host and every alias, host names in canonical form
  (`DB1.Example.COM.` → `db1.example.com`), or `ep:<host>:` when the port is unknown.

Blocking keys, which only bring candidates to be scored (`matching.score`):

* `short:<label>`: the first label of each DNS name (`orders-db` for `orders-db.corp.example`);
* `name:<name>`: the name, loosely compared (`matching`'s `name_form`), and the instance name
  inside the cloud id;
* `tok:<token>`: each token of the name (`name_tokens`: `Billing DB (prod)` → `billing`), so
  that weak evidence (shared name tokens) finds its candidates by an index too.

A host alone is never a strong key: two databases on one server differ by port (SPEC §6). The
keys are written by the service layer whenever a field they come from changes, so the import
job finds candidates with one indexed lookup per batch instead of comparing records to assets.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from webapp.discovery import normalise
from webapp.models import AssetIdentifier
from webapp.services import bulk

_SEPARATORS = re.compile(r"[^a-z0-9]+")
# fields whose change means the asset's identifiers must be rewritten
KEY_FIELDS = frozenset({"name", "host", "port", "aliases", "cloud_resource_id"})


# an import asks for the same names many times within a batch; the bound keeps what a long
# run leaves behind small (an entry costs some 300 bytes)
@lru_cache(maxsize=65_536)
def host_form(value: str) -> str:
    """The canonical spelling of a host name or address (lower-cased text if neither)."""
    return normalise.host(value) or value.strip().lower().rstrip(".")


# Cloud SQL self-links: the API's old host (`www.googleapis.com`) and its current one
# (`sqladmin.googleapis.com`) name one instance
_GCP_SELF_LINK = re.compile(r"^https?://(?:www|sqladmin)\.googleapis\.com/sql/", re.IGNORECASE)
GCP_SELF_LINK = "https://sqladmin.googleapis.com/sql/"


def cloud_form(value: str) -> str:
    """A cloud id's canonical spelling: Azure ids lower-cased, GCP self-links on the current
    API host."""
    value = value.strip()
    if value.lower().startswith("/subscriptions/"):
        return value.lower()
    return _GCP_SELF_LINK.sub(GCP_SELF_LINK, value)


def cloud_key(value: str) -> str:
    return f"cloud:{cloud_form(value)}"


def endpoint_key(host: str, port: int | None) -> str:
    return f"ep:{host_form(host)}:{port if port is not None else ''}"


def names(fields: Mapping[str, Any]) -> list[str]:
    """Host and aliases in canonical form, host first, without repeats."""
    found: list[str] = []
    for value in [fields.get("host"), *(fields.get("aliases") or [])]:
        if isinstance(value, str) and value.strip():
            name = host_form(value)
            if name and name not in found:
                found.append(name)
    return found


def strong_keys(fields: Mapping[str, Any], host_names: list[str] | None = None) -> list[str]:
    """The strong identifier keys of an asset (or a discovered record)."""
    keys: list[str] = []
    cloud = fields.get("cloud_resource_id")
    if isinstance(cloud, str) and cloud.strip():
        keys.append(cloud_key(cloud))
    port = fields.get("port")
    keys += [endpoint_key(name, port) for name in (names(fields) if host_names is None else host_names)]
    return keys


def name_form(value: Any) -> str:
    """A name compared loosely: lower case, runs of punctuation and spaces as one `-`."""
    return _SEPARATORS.sub("-", str(value or "").lower()).strip("-")


def cloud_short_id(cloud_id: Any) -> str:
    """The instance's own name inside a cloud id: the last part of an ARN, self-link or
    Azure id (`arn:aws:rds:…:db:orders-prod` → `orders-prod`)."""
    text = str(cloud_id or "").strip().rstrip("/")
    return name_form(re.split(r"[:/]", text)[-1]) if text else ""


_TOKEN_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")
_HOSTLIKE = re.compile(r"^\[?[0-9a-z:.-]+\]?(?::\d+)?(?:/.*)?$")
# words that say where a database runs or what it is, not which one it is: kept out of the
# tokens (`environment_words` and the engine are compared on their own)
ENVIRONMENT_WORDS = {
    "prod": "production", "prd": "production", "production": "production", "live": "production",
    "stg": "staging", "stage": "staging", "staging": "staging", "preprod": "staging",
    "dev": "development", "devel": "development", "development": "development",
    "test": "test", "tst": "test", "qa": "test", "uat": "test", "sit": "test",
}
ENGINE_WORDS = {
    "pg": "postgresql", "pgsql": "postgresql", "psql": "postgresql", "postgres": "postgresql",
    "postgresql": "postgresql", "mysql": "mysql", "mariadb": "mariadb", "maria": "mariadb",
    "mssql": "mssql", "sqlserver": "mssql", "oracle": "oracle", "ora": "oracle",
    "mongo": "mongodb", "mongodb": "mongodb", "redis": "redis", "elasticsearch": "elasticsearch",
    "elastic": "elasticsearch", "es": "elasticsearch", "db2": "db2", "cassandra": "cassandra",
    "aurora": "", "sql": "",
}
# words that say a database is a copy of another (a replica, a DR standby, a restore): a name
# with one and a name without are two databases, whatever else they share
ROLE_WORDS = frozenset({"dr", "replica", "standby", "secondary", "ro", "readonly", "reader",
                        "failover", "restore", "restored", "clone"})
GENERIC_WORDS = frozenset({"db", "database", "databases", "server", "srv", "instance", "cluster",
                           "rds", "cloud", "azure", "aws", "gcp", "the", "of", "and", "for"})


def name_words(value: Any) -> list[str]:
    """A name split into lower-case words on `-_. ` (and any punctuation), case changes
    (`RoutePlanner`) and letter/digit boundaries; empty for a name that is only a host name
    or an address with a port (nmap's made-up `host:port`)."""
    text = str(value or "").strip()
    if not text or (("." in text or ":" in text) and " " not in text and _HOSTLIKE.match(text.lower())):
        return []
    return [w.lower() for w in _TOKEN_SPLIT.split(text) if w]


def name_tokens(value: Any) -> list[str]:
    """The words of a name that tell which database it is: without environment words,
    engine names, role words (`replica`, `dr`), generic words (`db`, `server`) and bare
    numbers."""
    return list(dict.fromkeys(
        w for w in name_words(value)
        if len(w) > 1 and not w.isdigit() and w not in ENVIRONMENT_WORDS
        and w not in ENGINE_WORDS and w not in GENERIC_WORDS and w not in ROLE_WORDS
    ))


def short_labels(host_names: Iterable[str]) -> list[str]:
    """The first label of every DNS name (a single-label name is its own first label)."""
    labels = [n.split(".", 1)[0] for n in host_names if n and not normalise.ip(n)]
    return list(dict.fromkeys(labels))


def blocking_keys(fields: Mapping[str, Any], host_names: Iterable[str] | None = None) -> list[str]:
    """The weak keys that bring an asset (or a record) up as a candidate to be scored."""
    keys = [f"short:{label}" for label in short_labels(names(fields) if host_names is None else host_names)]
    for value in (name_form(fields.get("name")), cloud_short_id(fields.get("cloud_resource_id"))):
        if value and f"name:{value}" not in keys:
            keys.append(f"name:{value}")
    keys += [f"tok:{token}" for token in name_tokens(fields.get("name"))]
    return keys


def keys_for(fields: Mapping[str, Any]) -> list[str]:
    """Every key (strong and blocking) of an asset with these field values."""
    host_names = names(fields)
    return [*strong_keys(fields, host_names), *blocking_keys(fields, host_names)]


def rows(asset_id: uuid.UUID, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "asset_id": asset_id} for k in dict.fromkeys(keys_for(fields))]


def replace(session: Session, assets: Iterable[tuple[uuid.UUID, Mapping[str, Any]]]) -> None:
    """Rewrite the identifiers of these assets (id, current field values), in the caller's
    transaction."""
    ids: list[uuid.UUID] = []
    new: list[dict[str, Any]] = []
    for asset_id, fields in assets:
        ids.append(asset_id)
        new += rows(asset_id, fields)
    if not ids:
        return
    for start in range(0, len(ids), 5000):
        session.execute(
            delete(AssetIdentifier).where(bulk.among(session, AssetIdentifier.asset_id, ids[start : start + 5000]))
        )
    bulk.insert_rows(session, AssetIdentifier.__table__, new)


def forget(session: Session, asset_id: uuid.UUID) -> None:
    session.execute(delete(AssetIdentifier).where(AssetIdentifier.asset_id == asset_id))
