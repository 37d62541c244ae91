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

from webapp.discovery import coverage
from webapp.discovery.base import (
    Content,
    DiscoveredRecord,
    DiscoveryError,
    Format,
    ParseResult,
    Relation,
    Warnings,
    as_dict,
    build_record,
    detect_json_items,
    json_items,
    register,
    text_or_none,
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


def _is_single(doc: dict[str, Any]) -> bool:
    """`gcloud sql instances describe` prints one instance, not a list."""
    return "databaseVersion" in doc or doc.get("kind") == "sql#instance"


def _looks_like_instance(item: Any) -> bool:
    return isinstance(item, dict) and (
        item.get("kind") == "sql#instance"
        or (
            "databaseVersion" in item
            and bool({"connectionName", "selfLink", "project"} & item.keys())
        )
    )


def detect(content: Content) -> int:
    return detect_json_items(content, _is_single, _looks_like_instance, 90)


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
    link = text_or_none(item.get("selfLink"))
    if link:
        return _OLD_HOST.sub("https://sqladmin.googleapis.com/sql/", link)
    return SELF_LINK.format(project=project, name=name)


def parse(content: Content) -> ParseResult:
    items = json_items(content.json, _is_single)
    if items is None:
        raise DiscoveryError(
            'Expected the output of "gcloud sql instances list --format=json" (a list of '
            "Cloud SQL instances)."
        )
    warnings = Warnings()
    records = [_record(n, item) for n, item in enumerate(items, start=1)]
    if not records:
        warnings.add("The file lists no Cloud SQL instances.")
    return ParseResult(format=NAME, records=records, warnings=warnings.finish(),
                       coverage=coverage.of_cloud_records(records))


def _project_of(item: dict[str, Any]) -> str | None:
    project = text_or_none(item.get("project"))
    if project:
        return project
    connection = text_or_none(item.get("connectionName"))
    if connection and connection.count(":") >= 2:
        return connection.rsplit(":", 2)[0]
    match = re.search(r"/projects/([^/]+)/instances/", item.get("selfLink") or "")
    return match.group(1) if match else None


def _record(n: int, item: Any) -> DiscoveredRecord:
    if not isinstance(item, dict) or not text_or_none(item.get("name")):
        return DiscoveredRecord.unusable(f"gcp_sql:#{n}", n, "Cloud SQL instance without a name.")
    name = item["name"].strip()
    project = _project_of(item)
    key = f"gcp_sql:{project or ''}:{name}"
    builder = RecordBuilder()
    if project is None:
        builder.warnings.append("project not given; the record key has no project")
    link = self_link(item, project or "-", name)
    record = build_record(key, n, builder, _fill, item, name, link)
    if record.error is None:
        record.relations = _relations(item, project or "-", link)
    return record


def _addresses(item: dict[str, Any]) -> list[str]:
    """[PRIVATE…, PRIMARY…] addresses (OUTGOING excluded), private first."""
    ranked: list[tuple[int, str]] = []
    for entry in item.get("ipAddresses") or []:
        if not isinstance(entry, dict) or not text_or_none(entry.get("ipAddress")):
            continue
        kind = (entry.get("type") or "").upper()
        if kind == "OUTGOING":
            continue
        ranked.append((0 if kind == "PRIVATE" else 1, entry["ipAddress"].strip()))
    return [address for _, address in sorted(ranked, key=lambda r: r[0])]


def _fill(builder: RecordBuilder, item: dict[str, Any], name: str, link: str) -> None:
    settings = as_dict(item.get("settings"))
    ip_config = as_dict(settings.get("ipConfiguration"))
    backup = as_dict(settings.get("backupConfiguration"))
    metadata: dict[str, Any] = {}
    builder.set("name", name)
    builder.fields["cloud_provider"] = "gcp"
    builder.set("cloud_resource_id", link)
    builder.set("region", text_or_none(item.get("region")))

    database_version = text_or_none(item.get("databaseVersion"))
    if database_version:
        metadata["gcp_database_version"] = database_version
        engine, version, edition = engine_and_version(
            database_version, text_or_none(item.get("databaseInstalledVersion"))
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
    dns = text_or_none(item.get("dnsName"))
    hosts = ([dns] if dns else []) + addresses
    if hosts:
        builder.set("host", hosts[0])
        for other in hosts[1:]:
            builder.add_host_candidate(other)

    require_ssl = ip_config.get("requireSsl")
    ssl_mode = text_or_none(ip_config.get("sslMode"))
    if ssl_mode in _TLS:
        builder.fields["tls_required"] = _TLS[ssl_mode]
    elif isinstance(require_ssl, bool):
        builder.fields["tls_required"] = require_ssl
    if isinstance(ip_config.get("ipv4Enabled"), bool):
        builder.fields["publicly_accessible"] = ip_config["ipv4Enabled"]
    builder.fields["encrypted_at_rest"] = True
    kms = text_or_none(as_dict(item.get("diskEncryptionConfiguration")).get("kmsKeyName"))
    if kms:
        metadata["gcp_kms_key"] = kms
    if backup.get("enabled") is False:
        builder.fields["backup_retention_days"] = 0
    elif backup.get("enabled") is True:
        retention = as_dict(backup.get("backupRetentionSettings"))
        if retention.get("retentionUnit") == "COUNT":
            builder.set("backup_retention_days", retention.get("retainedBackups"))
    if isinstance(settings.get("deletionProtectionEnabled"), bool):
        builder.fields["deletion_protection"] = settings["deletionProtectionEnabled"]

    state = text_or_none(item.get("state"))
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
        if text_or_none(item.get(source)):
            metadata[target] = item[source]
    for source, target in (("tier", "gcp_tier"), ("availabilityType", "gcp_availability_type")):
        if text_or_none(settings.get(source)):
            metadata[target] = settings[source]
    builder.fields["metadata"] = metadata


def _relations(item: dict[str, Any], project: str, link: str) -> list[Relation]:
    def link_of(reference: str) -> str:
        ref_project, _, ref_name = reference.rpartition(":")
        base = link.rsplit("/projects/", 1)[0]
        return f"{base}/projects/{ref_project or project}/instances/{ref_name}"

    relations: list[Relation] = []
    master = text_or_none(item.get("masterInstanceName"))
    if master:
        relations.append(Relation("replicates_to", link_of(master), link))
    for replica in item.get("replicaNames") or []:
        if text_or_none(replica):
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
