"""`azure-json`: `az postgres flexible-server list`, `az mysql flexible-server list`,
`az sql server list` output (SPEC §6, format 5).

A JSON list of Azure Resource Manager resources (a single object from `… show` is accepted).
Supported resource types: `Microsoft.DBforPostgreSQL/flexibleServers`,
`Microsoft.DBforMySQL/flexibleServers`, `Microsoft.Sql/servers` (an Azure SQL logical server:
one asset, engine mssql), and the retired single servers (`Microsoft.DBforPostgreSQL/servers`,
`…MySQL/servers`, `…MariaDB/servers`). Other types in the list are skipped with a file warning.

* Resource ids are case-insensitive in Azure and different commands print them in different
  case (`resourceGroups` vs `resourcegroups`), so the id is lower-cased for the record key
  (`azure:<id>`), the cloud_resource_id and relation keys; one server keeps one id.
* host is `fullyQualifiedDomainName` (null while a server is being created: then unknown);
  the port is the one the service fixes (5432, 3306, 1433); region is `location` in its
  programmatic form (`East US` -> `eastus`).
* engine_version is `version` (plus `minorVersion` when the API gives it); an Azure SQL
  logical server's `version` (`12.0`) is its API version, not a SQL Server release: it goes to
  metadata and the engine version stays unknown.
* posture: flexible servers always encrypt storage (`dataEncryption` says with which key):
  encrypted_at_rest true; `network.publicNetworkAccess` (flexible) or `publicNetworkAccess`
  (SQL, single server) -> publicly_accessible; `backup.backupRetentionDays` (single server:
  `storageProfile.backupRetentionDays`); single server `sslEnforcement` -> tls_required. No
  list output shows deletion protection (resource locks): unknown.
* `tags` -> `key=value` tags and `metadata.azure_tags` (+ conventional tags fill fields).
* replicas: `sourceServerResourceId` on a server whose `replicationRole` (or `replica.role`)
  is a replica role gives `replicates_to` source -> replica. The same field on a
  point-in-time-restored server names its restore source, which is not replication: ignored.
"""

from __future__ import annotations

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

NAME = "azure-json"
TYPES = {
    "microsoft.dbforpostgresql/flexibleservers": "postgresql",
    "microsoft.dbformysql/flexibleservers": "mysql",
    "microsoft.sql/servers": "mssql",
    "microsoft.dbforpostgresql/servers": "postgresql",
    "microsoft.dbformysql/servers": "mysql",
    "microsoft.dbformariadb/servers": "mariadb",
}
_STATUS = {"ready": "active", "stopped": "inactive", "disabled": "inactive"}


def _is_single(doc: dict[str, Any]) -> bool:
    """`az … show` prints one resource, not a list."""
    return isinstance(doc.get("id"), str) and "type" in doc


def _is_azure_database(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("id"), str)
        and item["id"].lower().startswith("/subscriptions/")
        and isinstance(item.get("type"), str)
        and item["type"].lower().startswith(("microsoft.dbfor", "microsoft.sql/"))
    )


def detect(content: Content) -> int:
    return detect_json_items(content, _is_single, _is_azure_database, 90)


def parse(content: Content) -> ParseResult:
    items = json_items(content.json, _is_single)
    if items is None:
        raise DiscoveryError(
            'Expected the output of "az postgres flexible-server list", "az mysql '
            'flexible-server list" or "az sql server list" (a list of Azure resources).'
        )
    warnings = Warnings()
    records: list[DiscoveredRecord] = []
    skipped: dict[str, int] = {}
    for n, item in enumerate(items, start=1):
        kind = (item.get("type") or "") if isinstance(item, dict) else ""
        if isinstance(item, dict) and isinstance(kind, str) and kind and kind.lower() not in TYPES:
            skipped[kind] = skipped.get(kind, 0) + 1
            continue
        records.append(_record(n, item))
    for kind, count in skipped.items():
        warnings.add(
            f"Skipped {count} resource(s) of type {kind}: not a database server type "
            f"this format reads."
        )
    if not records:
        warnings.add("The file lists no Azure database servers.")
    return ParseResult(format=NAME, records=records, warnings=warnings.finish(),
                       coverage=coverage.of_cloud_records(records))


def _record(n: int, item: Any) -> DiscoveredRecord:
    if (
        not isinstance(item, dict)
        or not text_or_none(item.get("id"))
        or not text_or_none(item.get("name"))
    ):
        return DiscoveredRecord.unusable(
            f"azure:#{n}", n, "Azure resource without an id or a name."
        )
    resource_id = item["id"].strip().lower()
    key = f"azure:{resource_id}"
    kind = (text_or_none(item.get("type")) or "").lower()
    record = build_record(key, n, RecordBuilder(), _fill, item, resource_id, kind)
    if record.error is None:
        record.relations = _relations(item, resource_id)
    return record


def _relations(item: dict[str, Any], resource_id: str) -> list[Relation]:
    relations: list[Relation] = []
    source = text_or_none(item.get("sourceServerResourceId"))
    role = (
        text_or_none(item.get("replicationRole"))
        or text_or_none(as_dict(item.get("replica")).get("role"))
        or ""
    )
    if source and "replica" in role.lower():
        relations.append(Relation("replicates_to", source.lower(), resource_id))
    return relations


def _fill(builder: RecordBuilder, item: dict[str, Any], resource_id: str, kind: str) -> None:
    metadata: dict[str, Any] = {}
    engine = TYPES.get(kind)
    builder.set("name", item["name"].strip())
    builder.fields["cloud_provider"] = "azure"
    builder.set("cloud_resource_id", resource_id)
    if engine:
        builder.fields["engine"] = engine
        builder.fields["port"] = DEFAULT_PORTS[engine]
    else:
        builder.warnings.append("type not given; engine left out")
    metadata["azure_type"] = item.get("type")
    version = text_or_none(item.get("version"))
    if kind == "microsoft.sql/servers":
        # the logical server's API version (always "12.0"), not a SQL Server release
        if version:
            metadata["azure_server_version"] = version
    else:
        minor = item.get("minorVersion")
        if version and isinstance(minor, str | int) and str(minor).strip() and "." not in version:
            version = f"{version}.{str(minor).strip()}"
        builder.set("engine_version", version)
    builder.set("host", text_or_none(item.get("fullyQualifiedDomainName")))
    location = text_or_none(item.get("location"))
    if location:
        builder.set("region", location.lower().replace(" ", ""))

    network = as_dict(item.get("network"))
    public = text_or_none(network.get("publicNetworkAccess")) or text_or_none(
        item.get("publicNetworkAccess")
    )
    if public and public.lower() in ("enabled", "disabled"):
        builder.fields["publicly_accessible"] = public.lower() == "enabled"
    if kind.endswith("/flexibleservers"):
        builder.fields["encrypted_at_rest"] = True
        encryption = text_or_none(as_dict(item.get("dataEncryption")).get("type"))
        if encryption:
            metadata["azure_data_encryption"] = encryption
    retention = as_dict(item.get("backup")).get("backupRetentionDays")
    if retention is None:
        retention = as_dict(item.get("storageProfile")).get("backupRetentionDays")
    builder.set("backup_retention_days", retention)
    ssl = text_or_none(item.get("sslEnforcement"))
    if ssl and ssl.lower() in ("enabled", "disabled"):
        builder.fields["tls_required"] = ssl.lower() == "enabled"
    tls = text_or_none(item.get("minimalTlsVersion"))
    if tls:
        metadata["azure_minimal_tls_version"] = tls

    state = text_or_none(item.get("state")) or text_or_none(item.get("userVisibleState"))
    if state:
        metadata["azure_state"] = state
        if state.lower() in _STATUS:
            builder.fields["status"] = _STATUS[state.lower()]
    tags = item.get("tags")
    if isinstance(tags, dict) and tags:
        metadata["azure_tags"] = tags
        builder.set("tags", {str(k): ("" if v is None else str(v)) for k, v in tags.items()})
        fields_from_tags(tags.items(), builder)
    if text_or_none(item.get("resourceGroup")):
        metadata["azure_resource_group"] = item["resourceGroup"]
    sku = as_dict(item.get("sku"))
    if text_or_none(sku.get("name")):
        metadata["azure_sku"] = sku["name"]
    role = text_or_none(item.get("replicationRole"))
    if role:
        metadata["azure_replication_role"] = role
    ha = text_or_none(as_dict(item.get("highAvailability")).get("mode"))
    if ha:
        metadata["azure_high_availability"] = ha
    builder.fields["metadata"] = metadata


register(
    Format(
        name=NAME,
        description="az postgres/mysql flexible-server list, az sql server list",
        detect=detect,
        parse=parse,
        extensions=("json",),
    )
)
