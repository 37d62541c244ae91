"""`aws-rds-json`: `aws rds describe-db-instances` and `describe-db-clusters` output (SPEC §6, 4).

The file holds `{"DBInstances": [...]}`, `{"DBClusters": [...]}` or both keys (the two outputs
merged). Field names follow the RDS API (botocore's rds service model) as the CLI prints them.

* one record per DB instance (`aws_rds:<DBInstanceIdentifier>`) and per DB cluster
  (`aws_rds_cluster:<DBClusterIdentifier>`); an Aurora cluster and its instances are separate
  assets (the cluster endpoint and each instance endpoint are different servers to connect to),
  linked by `member_of`;
* the ARN is the cloud_resource_id; the endpoint gives host/port (an instance that is still
  being created has no endpoint yet: host and port stay unknown); the region comes from the
  ARN, else from the availability zone without its letter;
* posture: StorageEncrypted, PubliclyAccessible, BackupRetentionPeriod, DeletionProtection;
  TLS enforcement lives in a parameter group, which this output does not show: unknown;
* `TagList` becomes `key=value` tags and `metadata.aws_tags`; conventional tags
  (`Environment`, `Owner`, `Criticality`, `DataClassification`) also fill those fields;
* relationships: read replicas (`ReadReplicaSourceDBInstanceIdentifier`,
  `ReadReplicaDBInstanceIdentifiers`, `ReadReplicaDBClusterIdentifiers`, a cluster's
  `ReplicationSourceIdentifier`/`ReadReplicaIdentifiers`) give `replicates_to` from primary to
  replica; cluster membership (`DBClusterMembers`, an instance's `DBClusterIdentifier`) gives
  `member_of` from instance to cluster. Identifiers are turned into ARNs (same partition,
  account and region as the record that names them: RDS writes a bare identifier only for a
  same-region resource, an ARN otherwise), so the link resolves against assets seen in any
  import. Without the record's own ARN the link uses record keys instead.
* Engines: `postgres`/`aurora-postgresql` -> postgresql, `mysql`/`aurora-mysql`/`aurora`
  -> mysql, `mariadb`, `oracle-*`/`custom-oracle-*` -> oracle, `sqlserver-*`/
  `custom-sqlserver-*` -> mssql, `db2-*` -> db2; DocumentDB (`docdb`) and Neptune, which this
  API also lists, are `other` with the engine in metadata. Anything else: a warning, engine
  left out.
"""

from __future__ import annotations

from collections.abc import Callable
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
    build_record,
    register,
    text_list,
    text_or_none,
)
from webapp.discovery.fields import RecordBuilder, fields_from_tags

NAME = "aws-rds-json"

_ENGINE_PREFIXES = (
    ("aurora-postgresql", "postgresql"),
    ("aurora-mysql", "mysql"),
    ("aurora", "mysql"),  # the original Aurora engine name is MySQL 5.6-compatible
    ("postgres", "postgresql"),
    ("mysql", "mysql"),
    ("mariadb", "mariadb"),
    ("custom-oracle", "oracle"),
    ("oracle", "oracle"),
    ("custom-sqlserver", "mssql"),
    ("sqlserver", "mssql"),
    ("db2", "db2"),
    ("docdb", "other"),
    ("neptune", "other"),
)
_STATUS = {"available": "active", "stopped": "inactive", "stopping": "inactive"}


def detect(content: Content) -> int:
    if content.kind != "json":
        return 0
    doc = content.json
    if isinstance(doc, dict) and any(
        isinstance(doc.get(k), list) for k in ("DBInstances", "DBClusters")
    ):
        return 100
    return 0


def engine_of(raw: str) -> str | None:
    lowered = raw.strip().lower()
    for prefix, engine in _ENGINE_PREFIXES:
        if lowered == prefix or lowered.startswith(prefix + "-"):
            return engine
    return None


class Arn:
    """`arn:<partition>:rds:<region>:<account>:<db|cluster>:<identifier>`."""

    def __init__(self, text: str) -> None:
        parts = text.split(":", 6)
        self.valid = len(parts) == 7 and parts[0] == "arn" and parts[2] == "rds"
        self.partition, self.region, self.account = (
            (parts[1], parts[3], parts[4]) if self.valid else ("", "", "")
        )

    def sibling(self, kind: str, identifier: str) -> str:
        if identifier.startswith("arn:"):
            return identifier
        return f"arn:{self.partition}:rds:{self.region}:{self.account}:{kind}:{identifier}"


def _resolver(arn: str | None) -> Callable[[str, str], str]:
    """Turn an identifier named by a record into the id its relation should use: an ARN built
    from the record's own ARN when there is one, else the record key of this file."""
    ref = Arn(arn) if arn else None

    def other(kind: str, identifier: str) -> str:
        if identifier.startswith("arn:"):
            return identifier
        if ref is not None and ref.valid:
            return ref.sibling(kind, identifier)
        return f"aws_rds_cluster:{identifier}" if kind == "cluster" else f"aws_rds:{identifier}"

    return other


def parse(content: Content) -> ParseResult:
    doc = content.json
    if not isinstance(doc, dict) or not any(k in doc for k in ("DBInstances", "DBClusters")):
        raise DiscoveryError(
            'Expected the output of "aws rds describe-db-instances" or "describe-db-clusters" '
            '(an object with "DBInstances" or "DBClusters").'
        )
    warnings = Warnings()
    records: list[DiscoveredRecord] = []
    for section, build in (("DBInstances", _instance), ("DBClusters", _cluster)):
        items = doc.get(section, [])
        if not isinstance(items, list):
            raise DiscoveryError(f'"{section}" is not a list.')
        for item in items:
            records.append(build(len(records) + 1, item))
    if not records:
        warnings.add("The file lists no DB instances or clusters.")
    return ParseResult(format=NAME, records=records, warnings=warnings.finish(),
                       coverage=coverage.of_cloud_records(records))


def _relate(relations: list[Relation], kind: str, source: str, target: str) -> None:
    relation = Relation(kind=kind, source_key=source, target_key=target)
    if relation not in relations:
        relations.append(relation)


def _status(builder: RecordBuilder, metadata: dict[str, Any], status: str | None) -> None:
    """The RDS status goes to metadata; the ones that say active or inactive to the field."""
    if status:
        metadata["aws_status"] = status
        if status in _STATUS:
            builder.fields["status"] = _STATUS[status]


def _common(builder: RecordBuilder, item: dict[str, Any], arn: str | None) -> dict[str, Any]:
    """Fields shared by instances and clusters; returns the metadata collected."""
    metadata: dict[str, Any] = {}
    raw_engine = text_or_none(item.get("Engine"))
    if raw_engine:
        metadata["aws_engine"] = raw_engine
        engine = engine_of(raw_engine)
        if engine:
            builder.fields["engine"] = engine
        else:
            builder.warnings.append(f"engine {raw_engine!r} not recognised; left out")
    builder.set("engine_version", text_or_none(item.get("EngineVersion")))
    builder.fields["cloud_provider"] = "aws"
    if arn:
        builder.set("cloud_resource_id", arn)
        region = Arn(arn).region
        if region:
            builder.set("region", region)
    for source, field in (
        ("StorageEncrypted", "encrypted_at_rest"),
        ("PubliclyAccessible", "publicly_accessible"),
        ("DeletionProtection", "deletion_protection"),
    ):
        if isinstance(item.get(source), bool):
            builder.fields[field] = item[source]
    builder.set("backup_retention_days", item.get("BackupRetentionPeriod"))
    tags = item.get("TagList")
    if isinstance(tags, list):
        pairs = [
            (t.get("Key"), t.get("Value")) for t in tags if isinstance(t, dict) and t.get("Key")
        ]
        if pairs:
            metadata["aws_tags"] = {str(k): v for k, v in pairs}
            builder.set("tags", {str(k): ("" if v is None else str(v)) for k, v in pairs})
            fields_from_tags(pairs, builder)
    return metadata


def _instance(n: int, item: Any) -> DiscoveredRecord:
    if not isinstance(item, dict) or not text_or_none(item.get("DBInstanceIdentifier")):
        return DiscoveredRecord.unusable(
            f"aws_rds:#{n}", n, "DB instance without a DBInstanceIdentifier."
        )
    ident = item["DBInstanceIdentifier"].strip()
    key = f"aws_rds:{ident}"
    arn = text_or_none(item.get("DBInstanceArn"))
    record = build_record(key, n, RecordBuilder(), _fill_instance, item, ident, arn)
    if record.error is None:
        record.relations = _instance_relations(item, arn or key, _resolver(arn))
    return record


def _fill_instance(
    builder: RecordBuilder, item: dict[str, Any], ident: str, arn: str | None
) -> None:
    builder.set("name", ident)
    metadata = _common(builder, item, arn)
    endpoint = item.get("Endpoint")
    if isinstance(endpoint, dict):
        builder.set("host", text_or_none(endpoint.get("Address")))
        builder.set("port", endpoint.get("Port"))
    builder.set("database_name", text_or_none(item.get("DBName")))
    zone = text_or_none(item.get("AvailabilityZone"))
    if zone:
        metadata["aws_availability_zone"] = zone
        if "region" not in builder.fields:
            builder.set("region", zone.rstrip("abcdefghijklmnopqrstuvwxyz"))
    _status(builder, metadata, text_or_none(item.get("DBInstanceStatus")))
    for source, target in (
        ("DBInstanceClass", "aws_instance_class"),
        ("MultiAZ", "aws_multi_az"),
        ("StorageType", "aws_storage_type"),
        ("DbiResourceId", "aws_dbi_resource_id"),
    ):
        if item.get(source) not in (None, ""):
            metadata[target] = item[source]
    builder.fields["metadata"] = metadata


def _instance_relations(
    item: dict[str, Any], me: str, other: Callable[[str, str], str]
) -> list[Relation]:
    relations: list[Relation] = []
    source = text_or_none(item.get("ReadReplicaSourceDBInstanceIdentifier"))
    if source:
        _relate(relations, "replicates_to", other("db", source), me)
    for replica in text_list(item.get("ReadReplicaDBInstanceIdentifiers")):
        _relate(relations, "replicates_to", me, other("db", replica))
    for replica in text_list(item.get("ReadReplicaDBClusterIdentifiers")):
        _relate(relations, "replicates_to", me, other("cluster", replica))
    cluster = text_or_none(item.get("DBClusterIdentifier"))
    if cluster:
        _relate(relations, "member_of", me, other("cluster", cluster))
    return relations


def _cluster(n: int, item: Any) -> DiscoveredRecord:
    if not isinstance(item, dict) or not text_or_none(item.get("DBClusterIdentifier")):
        return DiscoveredRecord.unusable(
            f"aws_rds_cluster:#{n}", n, "DB cluster without a DBClusterIdentifier."
        )
    ident = item["DBClusterIdentifier"].strip()
    key = f"aws_rds_cluster:{ident}"
    arn = text_or_none(item.get("DBClusterArn"))
    record = build_record(key, n, RecordBuilder(), _fill_cluster, item, ident, arn)
    if record.error is None:
        record.relations = _cluster_relations(item, arn or key, _resolver(arn))
    return record


def _fill_cluster(
    builder: RecordBuilder, item: dict[str, Any], ident: str, arn: str | None
) -> None:
    builder.set("name", ident)
    metadata = _common(builder, item, arn)
    builder.set("host", text_or_none(item.get("Endpoint")))
    builder.set("port", item.get("Port"))
    builder.set("database_name", text_or_none(item.get("DatabaseName")))
    zones = item.get("AvailabilityZones")
    if (
        "region" not in builder.fields
        and isinstance(zones, list)
        and zones
        and text_or_none(zones[0])
    ):
        builder.set("region", zones[0].strip().rstrip("abcdefghijklmnopqrstuvwxyz"))
    _status(builder, metadata, text_or_none(item.get("Status")))
    reader = text_or_none(item.get("ReaderEndpoint"))
    if reader:
        # the reader endpoint leads to the replicas, not to this writer: not an alias
        metadata["aws_reader_endpoint"] = reader.lower().rstrip(".")
    for source, target in (
        ("EngineMode", "aws_engine_mode"),
        ("MultiAZ", "aws_multi_az"),
        ("DbClusterResourceId", "aws_cluster_resource_id"),
    ):
        if item.get(source) not in (None, ""):
            metadata[target] = item[source]
    builder.fields["metadata"] = metadata


def _cluster_relations(
    item: dict[str, Any], me: str, other: Callable[[str, str], str]
) -> list[Relation]:
    relations: list[Relation] = []
    members = item.get("DBClusterMembers")
    for member in members if isinstance(members, list) else []:
        if isinstance(member, dict) and text_or_none(member.get("DBInstanceIdentifier")):
            _relate(relations, "member_of", other("db", member["DBInstanceIdentifier"].strip()), me)
    source = text_or_none(item.get("ReplicationSourceIdentifier"))
    if source:
        _relate(relations, "replicates_to", other("cluster", source), me)
    for replica in text_list(item.get("ReadReplicaIdentifiers")):
        _relate(relations, "replicates_to", me, other("cluster", replica))
    return relations


register(
    Format(
        name=NAME,
        description="aws rds describe-db-instances / describe-db-clusters output",
        detect=detect,
        parse=parse,
        extensions=("json",),
    )
)
