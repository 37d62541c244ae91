"""`gcp-sql-json`: `gcloud sql instances list --format=json` (SPEC §6, format 5).

A JSON list of Cloud SQL `DatabaseInstance` resources (sqladmin v1beta4/v1); a single object
(`gcloud sql instances describe --format=json`) is accepted too.

* record key `gcp_sql:<project>:<name>`; cloud_resource_id is the `selfLink`, with the old
  `https://www.googleapis.com/sql/...` host rewritten to `https://sqladmin.googleapis.com/sql/...`
  (gcloud has printed both over the years; one instance must keep one id);
* engine and version from `databaseVersion` (`POSTGRES_15`, `MYSQL_8_0`,
  `SQLSERVER_2019_STANDARD`), the version refined by `databaseInstalledVersion`
  (`POSTGRES_15_4` -> `15.4`) when present;
* host: the instance's `dnsName` when it has one, else its private IP, else its public
  (PRIMARY) IP; the other addresses become aliases and all of them `ip_addresses` (the
  `OUTGOING` address is the instance's egress address, not where it listens: left out);
* port: Cloud SQL always listens on the engine's standard port (5432, 3306, 1433), so it is set;
* posture: `settings.ipConfiguration.requireSsl`/`sslMode` -> tls_required; `ipv4Enabled` (a
  public IP) -> publicly_accessible; Cloud SQL always encrypts storage -> encrypted_at_rest
  true (CMEK key in metadata); automated backups off -> 0 retention days, on with
  `retentionUnit: COUNT` -> the retained daily backups as days; `deletionProtectionEnabled`;
* `settings.userLabels` -> `key=value` tags (+ conventional labels fill environment/owner/…);
* replicas: `masterInstanceName` (`project:name` or a bare name in the same project) and
  `replicaNames` give `replicates_to` (primary -> replica) between self-links.
"""

from __future__ import annotations

import re
from typing import Any

from webapp.discovery.base import (
    Content,
    DiscoveredRecord,
    DiscoveryError,
    Format,
    ParseResult,
    RecordError,
    Relation,
    Warnings,
    register,
)
from webapp.discovery.fields import RecordBuilder, fields_from_tags
from webapp.discovery.normalise import DEFAULT_PORTS

NAME = "gcp-sql-json"
SELF_LINK = "https://sqladmin.googleapis.com/sql/v1beta4/projects/{project}/instances/{name}"
_OLD_HOST = re.compile(r"^https://www\.googleapis\.com/sql/")
_ENGINES = {"POSTGRES": "postgresql", "MYSQL": "mysql", "SQLSERVER": "mssql"}
_TLS = {
    "ENCRYPTED_ONLY": True,
    "TRUSTED_CLIENT_CERTIFICATE_REQUIRED": True,
    "ALLOW_UNENCRYPTED_AND_ENCRYPTED": False,
}


def _items(doc: Any) -> list[Any] | None:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and ("databaseVersion" in doc or doc.get("kind") == "sql#instance"):
        return [doc]
    return None


def _looks_like_instance(item: Any) -> bool:
    return isinstance(item, dict) and (
        item.get("kind") == "sql#instance"
        or (
            "databaseVersion" in item
            and bool({"connectionName", "selfLink", "project"} & item.keys())
        )
    )


def detect(content: Content) -> int:
    if content.kind != "json":
        return 0
    items = _items(content.json)
    if items and any(_looks_like_instance(item) for item in items[:5]):
        return 90
    return 0


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def engine_and_version(
    database_version: str, installed: str | None
) -> tuple[str | None, str | None, str | None]:
    """(engine, version, edition) from `POSTGRES_15` / `MYSQL_8_0_31` / `SQLSERVER_2019_STANDARD`."""
    best = (
        installed
        if installed and installed.split("_")[0] == database_version.split("_")[0]
        else database_version
    )
    parts = best.upper().split("_")
    engine = _ENGINES.get(parts[0])
    if engine is None:
        return None, None, None
    numbers = [p for p in parts[1:] if p.isdigit()]
    words = [p for p in parts[1:] if not p.isdigit()]
    if engine == "mssql":
        edition = next(
            (w.title() for w in words if w in ("STANDARD", "ENTERPRISE", "EXPRESS", "WEB")), None
        )
        return engine, (numbers[0] if numbers else None), edition
    return engine, (".".join(numbers) if numbers else None), None


def self_link(item: dict[str, Any], project: str, name: str) -> str:
    link = _text(item.get("selfLink"))
    if link:
        return _OLD_HOST.sub("https://sqladmin.googleapis.com/sql/", link)
    return SELF_LINK.format(project=project, name=name)


def parse(content: Content) -> ParseResult:
    items = _items(content.json)
    if items is None:
        raise DiscoveryError(
            'Expected the output of "gcloud sql instances list --format=json" (a list of '
            "Cloud SQL instances)."
        )
    warnings = Warnings()
    records = [_record(n, item) for n, item in enumerate(items, start=1)]
    if not records:
        warnings.add("The file lists no Cloud SQL instances.")
    return ParseResult(format=NAME, records=records, warnings=warnings.finish())


def _project_of(item: dict[str, Any]) -> str | None:
    project = _text(item.get("project"))
    if project:
        return project
    connection = _text(item.get("connectionName"))
    if connection and connection.count(":") >= 2:
        return connection.rsplit(":", 2)[0]
    match = re.search(r"/projects/([^/]+)/instances/", item.get("selfLink") or "")
    return match.group(1) if match else None


def _record(n: int, item: Any) -> DiscoveredRecord:
    if not isinstance(item, dict) or not _text(item.get("name")):
        return DiscoveredRecord.unusable(f"gcp_sql:#{n}", n, "Cloud SQL instance without a name.")
    name = item["name"].strip()
    project = _project_of(item)
    key = f"gcp_sql:{project or ''}:{name}"
    builder = RecordBuilder()
    if project is None:
        builder.warnings.append("project not given; the record key has no project")
    try:
        link = self_link(item, project or "-", name)
        _fill(builder, item, name, link)
        fields, warnings, ips = builder.finish()
    except RecordError as exc:
        return DiscoveredRecord(
            key=key, fields=builder.fields, warnings=builder.warnings, error=str(exc), row=n
        )
    relations = _relations(item, project or "-", link)
    return DiscoveredRecord(
        key=key, fields=fields, warnings=warnings, row=n, relations=relations, ip_addresses=ips
    )


def _addresses(item: dict[str, Any]) -> list[str]:
    """[PRIVATE…, PRIMARY…] addresses (OUTGOING excluded), private first."""
    ranked: list[tuple[int, str]] = []
    for entry in item.get("ipAddresses") or []:
        if not isinstance(entry, dict) or not _text(entry.get("ipAddress")):
            continue
        kind = (entry.get("type") or "").upper()
        if kind == "OUTGOING":
            continue
        ranked.append((0 if kind == "PRIVATE" else 1, entry["ipAddress"].strip()))
    return [address for _, address in sorted(ranked, key=lambda r: r[0])]


def _fill(builder: RecordBuilder, item: dict[str, Any], name: str, link: str) -> None:
    settings = _dict(item.get("settings"))
    ip_config = _dict(settings.get("ipConfiguration"))
    backup = _dict(settings.get("backupConfiguration"))
    metadata: dict[str, Any] = {}
    builder.set("name", name)
    builder.fields["cloud_provider"] = "gcp"
    builder.set("cloud_resource_id", link)
    builder.set("region", _text(item.get("region")))

    database_version = _text(item.get("databaseVersion"))
    if database_version:
        metadata["gcp_database_version"] = database_version
        engine, version, edition = engine_and_version(
            database_version, _text(item.get("databaseInstalledVersion"))
        )
        if engine:
            builder.fields["engine"] = engine
            builder.set("engine_version", version)
            builder.fields["port"] = DEFAULT_PORTS[engine]
            if edition:
                metadata["gcp_edition"] = edition
        else:
            builder.warnings.append(
                f"databaseVersion {database_version!r} not recognised; engine left out"
            )

    addresses = _addresses(item)
    dns = _text(item.get("dnsName"))
    hosts = ([dns] if dns else []) + addresses
    if hosts:
        builder.set("host", hosts[0])
        for other in hosts[1:]:
            builder.add_host_candidate(other)

    require_ssl = ip_config.get("requireSsl")
    ssl_mode = _text(ip_config.get("sslMode"))
    if ssl_mode in _TLS:
        builder.fields["tls_required"] = _TLS[ssl_mode]
    elif isinstance(require_ssl, bool):
        builder.fields["tls_required"] = require_ssl
    if isinstance(ip_config.get("ipv4Enabled"), bool):
        builder.fields["publicly_accessible"] = ip_config["ipv4Enabled"]
    builder.fields["encrypted_at_rest"] = True
    kms = _text(_dict(item.get("diskEncryptionConfiguration")).get("kmsKeyName"))
    if kms:
        metadata["gcp_kms_key"] = kms
    if backup.get("enabled") is False:
        builder.fields["backup_retention_days"] = 0
    elif backup.get("enabled") is True:
        retention = _dict(backup.get("backupRetentionSettings"))
        if retention.get("retentionUnit") == "COUNT":
            builder.set("backup_retention_days", retention.get("retainedBackups"))
    if isinstance(settings.get("deletionProtectionEnabled"), bool):
        builder.fields["deletion_protection"] = settings["deletionProtectionEnabled"]

    state = _text(item.get("state"))
    if state:
        metadata["gcp_state"] = state
        if settings.get("activationPolicy") == "NEVER" or state == "SUSPENDED":
            builder.fields["status"] = "inactive"
        elif state == "RUNNABLE":
            builder.fields["status"] = "active"
    labels = settings.get("userLabels")
    if isinstance(labels, dict) and labels:
        metadata["gcp_labels"] = labels
        builder.set("tags", {str(k): ("" if v is None else str(v)) for k, v in labels.items()})
        fields_from_tags(labels.items(), builder)
    for source, target in (
        ("connectionName", "gcp_connection_name"),
        ("instanceType", "gcp_instance_type"),
    ):
        if _text(item.get(source)):
            metadata[target] = item[source]
    for source, target in (("tier", "gcp_tier"), ("availabilityType", "gcp_availability_type")):
        if _text(settings.get(source)):
            metadata[target] = settings[source]
    builder.fields["metadata"] = metadata


def _relations(item: dict[str, Any], project: str, link: str) -> list[Relation]:
    def link_of(reference: str) -> str:
        ref_project, _, ref_name = reference.rpartition(":")
        base = link.rsplit("/projects/", 1)[0]
        return f"{base}/projects/{ref_project or project}/instances/{ref_name}"

    relations: list[Relation] = []
    master = _text(item.get("masterInstanceName"))
    if master:
        relations.append(Relation("replicates_to", link_of(master), link))
    for replica in item.get("replicaNames") or []:
        if _text(replica):
            relations.append(Relation("replicates_to", link, link_of(replica.strip())))
    return relations


register(
    Format(
        name=NAME,
        description="gcloud sql instances list --format=json",
        detect=detect,
        parse=parse,
        extensions=("json",),
    )
)
