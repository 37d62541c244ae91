"""Scoring a discovered record against one candidate asset (SPEC §6 "Matching").

Candidates come from blocking on indexed keys (`asset_identifiers`, see `identifiers`), never
from comparing all pairs. Each candidate is scored here from the evidence the two share, and
the evidence comes in levels, each with its outcome (`pipeline.decide` applies them):

* **strong** merges: the same `cloud_resource_id`; the same host or alias (FQDN or address)
  with the same port, the engines compatible or unknown;
* **medium** merges or goes to review, never to "create": a short host name equal to the first
  label of the other side's FQDN, or a name equal to the other side's cloud identifier, each
  with the same port and engine family; the same host where one side's port is unknown;
* **weak** goes to review, never merges alone: name tokens shared after normalisation
  (`identifiers.name_tokens`), the same engine family, compatible versions (`versions_compatible`)
  and a plausible endpoint (the same port, or one side's unknown).

Other contributions (the same database name, a compatible version, environment or engine words
in both names) corroborate. The contributions combine as independent evidence (`1 - Π(1 - w)`),
so more evidence never lowers the confidence and the result stays below 1. Vetoes end the
comparison whatever the evidence: different cloud ids, the same host on a different port,
different databases on one endpoint, incompatible engines, production against non-production,
and a replica against its primary. Every contribution and veto is a line in `reasons`, naming
its level and weight, as a reviewer reads them; `doubts` are the contrary evidence that keeps a
medium match from merging on its own.

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
from webapp.services.identifiers import cloud_short_id, name_form, name_tokens

# weights of the contributions, by level
CLOUD = 0.99  # strong
ENDPOINT = 0.95  # strong
MEDIUM = 0.88  # medium: a short host or a name equal to a cloud id, with port and engine family
SAME_HOST_PORT_UNKNOWN = 0.65  # medium: the same host, one side's port unknown
SHORT_HOST = 0.55  # a short host name alone (no port or engine to back it): weak
NAME_IS_CLOUD_ID = 0.50  # a name equal to a cloud identifier alone: weak
NAME_TOKENS = 0.45  # weak: times the share of tokens in common (Jaccard)
NAME_SIMILAR = 0.45  # times the similarity, from NAME_SIMILARITY_MIN up
NAME_SIMILARITY_MIN = 0.85
SAME_DATABASE = 0.20
SAME_VERSION = 0.35  # compatible versions, both known: corroborates
SAME_WORDS = 0.10  # the same environment or engine word in both names
STRONG_MIN = ENDPOINT  # a strong identifier alone reaches this confidence
LEVELS = ("weak", "medium", "strong")

ENGINE_FAMILY = {"mariadb": "mysql"}  # nmap reports MariaDB servers as MySQL
NON_PRODUCTION = frozenset({"staging", "development", "test"})


@dataclass
class Score:
    confidence: float = 0.0
    reasons: list[str] = field(default_factory=list)
    level: str | None = None  # the strongest evidence found: strong, medium, weak or None
    veto: str | None = None
    doubts: list[str] = field(default_factory=list)  # keep a medium match from merging alone

    @property
    def strong(self) -> bool:
        return self.level == "strong" and self.veto is None

    def add(self, weight: float, reason: str, *, level: str | None = None) -> None:
        """A piece of evidence: `level` when it is evidence of a level of its own, None when
        it only corroborates."""
        self.confidence = 1 - (1 - self.confidence) * (1 - weight)
        self.reasons.append(f"{level or 'corroborating'}: {reason} (+{weight:.2f})")
        if level and (self.level is None or LEVELS.index(level) > LEVELS.index(self.level)):
            self.level = level

    def doubt(self, reason: str) -> None:
        self.doubts.append(reason)
        self.reasons.append(f"against: {reason}")

    def refuse(self, reason: str) -> Score:
        self.veto = reason
        self.confidence = 0.0
        self.level = None
        self.reasons.append(f"veto: {reason}")
        return self


def engine_family(value: Any) -> str:
    value = str(value or "")
    return ENGINE_FAMILY.get(value, value)


def engines_compatible(a: Any, b: Any) -> bool:
    a, b = str(a), str(b)
    return a == b or "other" in (a, b) or engine_family(a) == engine_family(b)


def environment_kind(value: Any) -> str | None:
    value = str(value or "")
    if value == "production":
        return "production"
    return "non-production" if value in NON_PRODUCTION else None


# --- versions ---------------------------------------------------------------------------------

# SQL Server's product year and its major version (`2022` is `16.0.x`)
MSSQL_YEARS = {"2025": "17", "2022": "16", "2019": "15", "2017": "14", "2016": "13",
               "2014": "12", "2012": "11", "2008 r2": "10.50", "2008r2": "10.50", "2008": "10"}
_VERSION_NUMBERS = re.compile(r"\d+(?:[._]\d+)*")


def version_parts(engine: Any, value: Any) -> tuple[int, ...] | None:
    """The numeric parts of a version as vendors spell it (`8.0.36-log` → 8.0.36,
    `POSTGRES_16_2` → 16.2, `15.00.4312.00; RTM+` → 15.0.4312.0, SQL Server `2022` → 16);
    None when unknown or a range (`9.6.0 or later`)."""
    text = str(value or "").strip().lower()
    if not text or is_version_range(text):
        return None
    if engine_family(engine) == "mssql":
        for year, major in MSSQL_YEARS.items():
            if re.search(rf"\b{year}\b", text):
                text = major
                break
    found = _VERSION_NUMBERS.search(text)
    if not found:
        return None
    return tuple(int(p) for p in re.split(r"[._]", found.group(0)))


def versions_compatible(engine: Any, a: Any, b: Any) -> bool | None:
    """Whether two versions may be one installation: one is a prefix of the other once spelt
    alike (`8.0` / `8.0.36-log`, `16` / `POSTGRES_16_2`, SQL Server `2022` / `16.0.x`, trailing
    zeros aside); None when either is unknown."""
    x, y = version_parts(engine, a), version_parts(engine, b)
    if x is None or y is None:
        return None
    short, long = sorted((x, y), key=len)
    padded = long[: len(short)]
    if short == padded:
        return True
    # `16.0` against `16`: zeros past the shorter one's parts say nothing
    return all(s == p for s, p in zip(short, long, strict=False)) and all(v == 0 for v in long[len(short):])


# --- scoring ----------------------------------------------------------------------------------


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
        result.add(CLOUD, "same cloud_resource_id", level="strong")
        return result  # the cloud's own id is the resource: nothing else can outweigh it
    if _replication_linked(record, candidate, linked):
        return result.refuse("a replica and its primary")
    engine, their_engine = record.get("engine"), candidate.get("engine")
    if engine and their_engine and not engines_compatible(engine, their_engine):
        return result.refuse(f"different engines ({engine} vs {their_engine})")
    kinds = environment_kind(record.get("environment")), environment_kind(candidate.get("environment"))
    if None not in kinds and kinds[0] != kinds[1]:
        return result.refuse(f"{kinds[0]} against {kinds[1]}")
    same_family = bool(engine and their_engine and "other" not in (engine, their_engine)
                       and engine_family(engine) == engine_family(their_engine))

    their_names = candidate.get("_names") or identifiers.names(candidate)  # a caller's cache
    shared = [n for n in record_names if n in their_names] if their_names else []
    port, their_port = record.get("port"), candidate.get("port")
    same_port = port is not None and port == their_port
    database, their_database = record.get("database_name"), candidate.get("database_name")
    if shared:
        if port is not None and their_port is not None and port != their_port:
            return result.refuse(f"same host {shared[0]}, different port ({port} vs {their_port})")
        if database and their_database and database != their_database:
            return result.refuse(f"different databases on {shared[0]} ({database} vs {their_database})")
        if same_port:
            result.add(ENDPOINT, f"same host:port {shared[0]}:{port}", level="strong")
        elif port is None and their_port is None and database and database == their_database:
            result.add(ENDPOINT, f"same host and database {shared[0]}/{database}", level="strong")
        elif port is None or their_port is None:
            result.add(SAME_HOST_PORT_UNKNOWN, f"same host {shared[0]}, port unknown on one side",
                       level="medium")
    versions = versions_compatible(engine or their_engine, record.get("engine_version"),
                                   candidate.get("engine_version"))
    if result.strong:
        if versions is False:  # an upgrade in place, or an address reused by another server
            result.doubt(f"versions differ ({record.get('engine_version')} vs "
                         f"{candidate.get('engine_version')})")
        return result

    short = _short_host_match(record_names, their_names)
    if short and same_port and same_family:
        result.add(MEDIUM, f"{short}, same port {port} and engine family {engine_family(engine)}",
                   level="medium")
    elif short:
        result.add(SHORT_HOST, short, level="weak")
    name, their_name = name_form(record.get("name")), name_form(candidate.get("name"))
    if name and (name == cloud_short_id(theirs) or their_name == cloud_short_id(ours)):
        if same_port and same_family:
            result.add(MEDIUM, f"name equals the cloud identifier, same port {port} and engine "
                               f"family {engine_family(engine)}", level="medium")
        else:
            result.add(NAME_IS_CLOUD_ID, "name equals the cloud identifier", level="weak")
    else:
        _name_evidence(result, record, candidate, same_family, port, their_port)

    if versions and result.level:
        result.add(SAME_VERSION, f"compatible versions {record.get('engine_version')} / "
                                 f"{candidate.get('engine_version')}")
    elif versions is False and result.level:
        result.doubt(f"versions differ ({record.get('engine_version')} vs {candidate.get('engine_version')})")
        if result.level == "weak":  # weak evidence needs compatible versions
            result.level = None
    if database and their_database and database.lower() == their_database.lower() and not shared:
        result.add(SAME_DATABASE, f"same database name {database} on another host")
    elif database and their_database and not shared and result.level:
        result.doubt(f"database names differ ({database} vs {their_database})")
    return result


def _name_evidence(
    result: Score, record: Mapping[str, Any], candidate: Mapping[str, Any], same_family: bool,
    port: Any, their_port: Any,
) -> None:
    """Weak evidence from the names: tokens in common (the level, when the engine family is the
    same and the endpoint plausible), or close spellings (corroborating); environment and
    engine words in the names are evidence of their own."""
    ours, theirs = record.get("name"), candidate.get("name")
    tokens, their_tokens = set(name_tokens(ours)), set(name_tokens(theirs))
    common = tokens & their_tokens
    words, their_words = set(identifiers.name_words(ours)), set(identifiers.name_words(theirs))
    envs = {identifiers.ENVIRONMENT_WORDS[w] for w in words if w in identifiers.ENVIRONMENT_WORDS}
    their_envs = {identifiers.ENVIRONMENT_WORDS[w] for w in their_words if w in identifiers.ENVIRONMENT_WORDS}
    if envs and their_envs and not envs & their_envs:
        result.doubt(f"the names say different environments ({', '.join(sorted(envs))} vs "
                     f"{', '.join(sorted(their_envs))})")
        return
    roles = {w for w in words if w in identifiers.ROLE_WORDS}
    their_roles = {w for w in their_words if w in identifiers.ROLE_WORDS}
    numbers = {w.lstrip("0") for w in words if w.isdigit()}
    their_numbers = {w.lstrip("0") for w in their_words if w.isdigit()}
    against = _implausible_endpoint(record, candidate)
    if common and roles != their_roles:
        against = f"one name says {', '.join(sorted(roles ^ their_roles))} and the other does not"
    elif common and numbers != their_numbers:
        against = f"the names carry different numbers ({', '.join(sorted(numbers ^ their_numbers))})"
    if common and against:
        result.doubt(against)
        return
    if common and same_family:
        share = len(common) / len(tokens | their_tokens)
        result.add(NAME_TOKENS * share, f"name tokens in common ({', '.join(sorted(common))}), same "
                                        f"engine family, port {port or their_port or 'unknown'}",
                   level="weak")
        if envs & their_envs:
            result.add(SAME_WORDS, f"both names say {', '.join(sorted(envs & their_envs))}")
        engines = {identifiers.ENGINE_WORDS[w] for w in words | their_words if identifiers.ENGINE_WORDS.get(w)}
        family = engine_family(record.get("engine"))
        if engines and all(engine_family(e) == family for e in engines):
            result.add(SAME_WORDS, f"the engine named in the name is {family}")
        return
    name, their_name = name_form(ours), name_form(theirs)
    if name and their_name:
        similarity = fuzz.ratio(name, their_name) / 100
        if similarity >= NAME_SIMILARITY_MIN:
            result.add(NAME_SIMILAR * similarity, f"name similarity {similarity:.2f}")


def _implausible_endpoint(record: Mapping[str, Any], candidate: Mapping[str, Any]) -> str | None:
    """Why the two cannot be one endpoint, as far as weak evidence goes: another port, another
    cloud provider or another region (each when both sides know it)."""
    port, their_port = record.get("port"), candidate.get("port")
    if port is not None and their_port is not None and port != their_port:
        return f"different ports ({port} vs {their_port})"
    provider = getattr(record.get("cloud_provider"), "value", record.get("cloud_provider"))
    their_provider = getattr(candidate.get("cloud_provider"), "value", candidate.get("cloud_provider"))
    if provider and their_provider and provider != their_provider:
        return f"different clouds ({provider} vs {their_provider})"
    region, their_region = name_form(record.get("region")), name_form(candidate.get("region"))
    if region and their_region and region.replace("-", "") != their_region.replace("-", ""):
        return f"different regions ({record.get('region')} vs {candidate.get('region')})"
    return None


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
