"""Scoring a discovered record against one candidate asset (SPEC §6 "Matching").

Candidates come from blocking on indexed keys (`asset_identifiers`, see `identifiers`), never
from comparing all pairs. Each candidate is scored here from the evidence the two share:

* strong: the same `cloud_resource_id`; the same host or alias with the same port;
* medium: a short host name equal to the first label of the other side's FQDN (with the same
  port, more); the same host where one side's port is unknown; a name equal to the other side's
  cloud identifier;
* weak: name similarity (rapidfuzz); the same database name on another host.

The contributions combine as independent evidence (`1 - Π(1 - w)`), so more evidence never
lowers the confidence and the result stays below 1. Vetoes end the comparison whatever the
evidence: different cloud ids, the same host on a different port, different databases on one
endpoint, incompatible engines, production against non-production, and a replica against its
primary. Every contribution and veto is a line in `reasons`, as a reviewer reads them.

Pure functions of plain values: no database, no Flask.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from webapp.discovery import normalise
from webapp.models import asset_fields
from webapp.services import identifiers
from webapp.services.identifiers import cloud_short_id, name_form

# weights of the contributions
CLOUD = 0.99
ENDPOINT = 0.95
SHORT_HOST = 0.55
SAME_PORT = 0.30  # only beside a short host name: together they nearly name the endpoint
SAME_HOST_PORT_UNKNOWN = 0.65  # the same host, one side's port unknown: a reviewer decides
NAME_IS_CLOUD_ID = 0.50
NAME_SIMILAR = 0.45  # times the similarity, from NAME_SIMILARITY_MIN up
NAME_SIMILARITY_MIN = 0.85
SAME_DATABASE = 0.20
STRONG_MIN = ENDPOINT  # a strong identifier alone reaches this confidence

ENGINE_FAMILY = {"mariadb": "mysql"}  # nmap reports MariaDB servers as MySQL
NON_PRODUCTION = frozenset({"staging", "development", "test"})


@dataclass
class Score:
    confidence: float = 0.0
    reasons: list[str] = field(default_factory=list)
    strong: bool = False
    veto: str | None = None

    def add(self, weight: float, reason: str, *, strong: bool = False) -> None:
        self.confidence = 1 - (1 - self.confidence) * (1 - weight)
        self.reasons.append(f"{reason} (+{weight:.2f})")
        self.strong = self.strong or strong

    def refuse(self, reason: str) -> Score:
        self.veto = reason
        self.confidence = 0.0
        self.strong = False
        self.reasons.append(f"veto: {reason}")
        return self


def engines_compatible(a: Any, b: Any) -> bool:
    a, b = str(a), str(b)
    return a == b or "other" in (a, b) or ENGINE_FAMILY.get(a, a) == ENGINE_FAMILY.get(b, b)


def environment_kind(value: Any) -> str | None:
    value = str(value or "")
    if value == "production":
        return "production"
    return "non-production" if value in NON_PRODUCTION else None


def score(
    record: Mapping[str, Any],
    record_names: Collection[str],
    candidate: Mapping[str, Any],
    *,
    linked: Collection[tuple[str, str]] = (),
) -> Score:
    """How likely `record` (discovered fields; `record_names` its host names and addresses in
    canonical form, bridged names included) describes the `candidate` asset's database.

    `linked`: replication links known from the files (pairs of cloud ids or names, either
    order); a record and a candidate so linked are a replica and its primary, never one asset.
    """
    result = Score()
    ours, theirs = record.get("cloud_resource_id"), candidate.get("cloud_resource_id")
    if ours and theirs:
        if identifiers.cloud_form(ours) != identifiers.cloud_form(theirs):
            return result.refuse("different cloud_resource_id")
        result.add(CLOUD, "same cloud_resource_id", strong=True)
        return result  # the cloud's own id is the resource: nothing else can outweigh it
    if _replication_linked(record, candidate, linked):
        return result.refuse("a replica and its primary")
    engine, their_engine = record.get("engine"), candidate.get("engine")
    if engine and their_engine and not engines_compatible(engine, their_engine):
        return result.refuse(f"different engines ({engine} vs {their_engine})")
    kinds = environment_kind(record.get("environment")), environment_kind(candidate.get("environment"))
    if None not in kinds and kinds[0] != kinds[1]:
        return result.refuse(f"{kinds[0]} against {kinds[1]}")

    their_names = candidate.get("_names") or identifiers.names(candidate)  # a caller's cache
    shared = [n for n in record_names if n in their_names] if their_names else []
    port, their_port = record.get("port"), candidate.get("port")
    database, their_database = record.get("database_name"), candidate.get("database_name")
    if shared:
        if port is not None and their_port is not None and port != their_port:
            return result.refuse(f"same host {shared[0]}, different port ({port} vs {their_port})")
        if database and their_database and database != their_database:
            return result.refuse(f"different databases on {shared[0]} ({database} vs {their_database})")
        if port is not None and port == their_port:
            result.add(ENDPOINT, f"same host:port {shared[0]}:{port}", strong=True)
        elif port is None and their_port is None and database and database == their_database:
            result.add(ENDPOINT, f"same host and database {shared[0]}/{database}", strong=True)
        elif port is None or their_port is None:
            result.add(SAME_HOST_PORT_UNKNOWN, f"same host {shared[0]}, port unknown on one side")

    if not result.strong:
        short = _short_host_match(record_names, their_names)
        if short:
            result.add(SHORT_HOST, short)
            if port is not None and port == their_port:
                result.add(SAME_PORT, f"same port {port}")
    name, their_name = name_form(record.get("name")), name_form(candidate.get("name"))
    if name and (name == cloud_short_id(theirs) or their_name == cloud_short_id(ours)):
        result.add(NAME_IS_CLOUD_ID, "name equals the cloud identifier")
    elif name and their_name:
        similarity = fuzz.ratio(name, their_name) / 100
        if similarity >= NAME_SIMILARITY_MIN:
            result.add(NAME_SIMILAR * similarity, f"name similarity {similarity:.2f}")
    if database and database == their_database and not shared:
        result.add(SAME_DATABASE, f"same database name {database} on another host")
    return result


def _short_host_match(names: Collection[str], their_names: Collection[str]) -> str | None:
    """A single-label host on one side equal to the first label of an FQDN on the other."""
    for short_side, long_side in ((names, their_names), (their_names, names)):
        shorts = {n for n in short_side if "." not in n and not normalise.ip(n)}
        for fqdn in long_side:
            if "." in fqdn and not normalise.ip(fqdn) and fqdn.split(".", 1)[0] in shorts:
                return f"short host name {fqdn.split('.', 1)[0]} = first label of {fqdn}"
    return None


def _replication_linked(
    record: Mapping[str, Any], candidate: Mapping[str, Any], linked: Collection[tuple[str, str]]
) -> bool:
    if not linked:
        return False
    ends = [_link_forms(record), _link_forms(candidate)]
    return any(
        (a in ends[0] and b in ends[1]) or (b in ends[0] and a in ends[1]) for a, b in linked
    )


def _link_forms(fields: Mapping[str, Any]) -> set[str]:
    """How a replication link may name this database: its cloud id, or its name."""
    forms = {name_form(fields.get("name"))}
    cloud = fields.get("cloud_resource_id")
    if cloud:
        forms |= {identifiers.cloud_form(cloud), cloud_short_id(cloud)}
    return forms - {""}


def link_pairs(relations: Iterable[Any]) -> set[tuple[str, str]]:
    """The replication links of parsed relations, in the forms `_link_forms` compares (a
    cloud id also by the instance name inside it, so a primary known only by name is found)."""
    pairs: set[tuple[str, str]] = set()
    for relation in relations:
        if relation.kind == "replicates_to":
            pairs |= {(a, b) for a in _key_forms(relation.source_key) for b in _key_forms(relation.target_key)}
    return pairs


def _key_forms(key: str) -> set[str]:
    """A relation end: a cloud id (canonical form, and the name inside it) or, for a record
    key such as `aws_rds:orders-replica`, the database's name."""
    key = key.strip()
    if key.lower().startswith(("arn:", "/subscriptions/", "https://", "projects/")):
        return {identifiers.cloud_form(key), cloud_short_id(key)} - {""}
    return {name_form(key.split(":", 1)[-1])} - {""}


# --- source precedence (SPEC §6: "fields are updated by source precedence") -------------------

# the kind of source a run is, from its format, when its label is not itself in a precedence list
FORMAT_KIND = {
    "aws-rds-json": "aws",
    "gcp-sql-json": "gcp",
    "azure-json": "azure",
    "nmap-xml": "nmap",
    "csv": "csv",
    "inventory-json": "inventory",
}
# fields people and CMDBs know better than machines; every other reconciled field is technical
BUSINESS_FIELDS = asset_fields.BUSINESS_FIELDS


def source_kind(label: str | None, fmt: str | None = None, known: Collection[str] = ()) -> str:
    """What precedence knows a source by: `manual`, a label listed in the settings, or the kind
    of its format (`nmap-xml` → `nmap`)."""
    label = (label or "").strip()
    if label == "manual" or label in known:
        return label
    if label in FORMAT_KIND:
        return FORMAT_KIND[label]
    return FORMAT_KIND.get(fmt or "", label)


@dataclass
class Precedence:
    technical: list[str]
    business: list[str]

    def rank(self, field_name: str, kind: str) -> int:
        """0 is highest; a source not listed ranks below every listed one."""
        if kind == "manual":
            return -1
        order = self.business if field_name in BUSINESS_FIELDS else self.technical
        return order.index(kind) if kind in order else len(order)

    def outranks(self, field_name: str, current: str, incoming: str) -> bool:
        """Whether the source that set the current value outranks the incoming one."""
        return self.rank(field_name, current) < self.rank(field_name, incoming)

    @property
    def known(self) -> set[str]:
        return {*self.technical, *self.business}


_RANGE = re.compile(r"\bor (later|newer|earlier|older)\b|\bthrough\b|\d\s+-\s+\d|\.x\b|[<>]", re.IGNORECASE)


def is_version_range(value: Any) -> bool:
    """nmap's `9.6.0 or later`, `5.0.0 - 5.1.2` or `8.x`: not an exact version."""
    return isinstance(value, str) and bool(_RANGE.search(value))
