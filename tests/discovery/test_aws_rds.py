"""`aws-rds-json`: aws rds describe-db-instances / describe-db-clusters output."""

from __future__ import annotations

import json

import pytest

from tests.discovery.helpers import by_key, parse_fixture
from webapp.discovery import Relation, parse

ARN = "arn:aws:rds:us-east-1:123456789012"


@pytest.fixture(scope="module")
def instances():
    return parse_fixture("aws_rds_instances.json")


@pytest.fixture(scope="module")
def clusters():
    return parse_fixture("aws_rds_clusters.json")


def test_record_keys(instances, clusters):
    assert [r.key for r in instances.records] == [
        "aws_rds:billing-prod",
        "aws_rds:billing-prod-replica",
        "aws_rds:crm-sql",
        "aws_rds:erp-oracle",
        "aws_rds:orders-aurora-instance-1",
        "aws_rds:orders-aurora-instance-2",
        "aws_rds:new-reporting",
        "aws_rds:legacy-stopped",
        "aws_rds:timeseries",
    ]
    assert [r.key for r in clusters.records] == [
        "aws_rds_cluster:orders-aurora",
        "aws_rds_cluster:docs-store",
    ]


def test_an_instance(instances):
    record = by_key(instances)["aws_rds:billing-prod"]
    fields = dict(record.fields)
    metadata = fields.pop("metadata")
    assert fields == {
        "name": "billing-prod",
        "engine": "postgresql",
        "engine_version": "15.5",
        "host": "billing-prod.cabcdefghijk.us-east-1.rds.amazonaws.com",
        "port": 5432,
        "database_name": "billing",
        "cloud_provider": "aws",
        "region": "us-east-1",
        "cloud_resource_id": f"{ARN}:db:billing-prod",
        "status": "active",
        "encrypted_at_rest": True,
        "publicly_accessible": False,
        "deletion_protection": True,
        "backup_retention_days": 14,
        "tags": [
            "costcenter=cc-100",
            "dataclassification=confidential",
            "environment=prod",
            "owner=team-billing@example.com",
        ],
        # conventional tags fill their fields
        "environment": "production",
        "owner": "team-billing@example.com",
        "data_classification": "confidential",
    }
    assert metadata["aws_tags"] == {
        "Environment": "prod",
        "Owner": "team-billing@example.com",
        "CostCenter": "CC-100",
        "DataClassification": "Confidential",
    }
    assert metadata["aws_engine"] == "postgres"
    assert metadata["aws_availability_zone"] == "us-east-1a"
    assert metadata["aws_multi_az"] is True
    assert "LatestRestorableTime" not in json.dumps(metadata)  # changes every few minutes


def test_read_replicas_are_relations_between_arns(instances):
    primary = by_key(instances)["aws_rds:billing-prod"]
    assert primary.relations == [
        Relation("replicates_to", f"{ARN}:db:billing-prod", f"{ARN}:db:billing-prod-replica"),
        # a cross-region replica is named by its ARN
        Relation(
            "replicates_to",
            f"{ARN}:db:billing-prod",
            "arn:aws:rds:eu-west-1:123456789012:db:billing-dr",
        ),
    ]
    # the replica states the same link; it is kept once
    assert by_key(instances)["aws_rds:billing-prod-replica"].relations == []


def test_cluster_membership(instances, clusters):
    member = by_key(instances)["aws_rds:orders-aurora-instance-1"]
    assert member.relations == [
        Relation("member_of", f"{ARN}:db:orders-aurora-instance-1", f"{ARN}:cluster:orders-aurora")
    ]
    cluster = by_key(clusters)["aws_rds_cluster:orders-aurora"]
    assert cluster.relations == [
        Relation("member_of", f"{ARN}:db:orders-aurora-instance-1", f"{ARN}:cluster:orders-aurora"),
        Relation("member_of", f"{ARN}:db:orders-aurora-instance-2", f"{ARN}:cluster:orders-aurora"),
        Relation(
            "replicates_to",
            f"{ARN}:cluster:orders-aurora",
            "arn:aws:rds:us-west-2:123456789012:cluster:orders-aurora-dr",
        ),
    ]


def test_a_cluster(clusters):
    record = by_key(clusters)["aws_rds_cluster:orders-aurora"]
    assert record.fields["host"] == "orders-aurora.cluster-cabcdefghijk.us-east-1.rds.amazonaws.com"
    assert record.fields["port"] == 5432 and record.fields["database_name"] == "orders"
    assert record.fields["cloud_resource_id"] == f"{ARN}:cluster:orders-aurora"
    assert record.fields["engine"] == "postgresql" and record.fields["criticality"] == "critical"
    assert record.fields["deletion_protection"] is True
    assert "publicly_accessible" not in record.fields  # Aurora clusters do not say
    assert record.fields["metadata"]["aws_reader_endpoint"].startswith("orders-aurora.cluster-ro-")
    assert "aliases" not in record.fields  # the reader endpoint is not this writer


def test_both_outputs_in_one_file():
    result = parse_fixture("aws_rds_both.json")
    assert [r.key for r in result.records] == [
        "aws_rds:orders-aurora-instance-1",
        "aws_rds:orders-aurora-instance-2",
        "aws_rds_cluster:orders-aurora",
    ]
    relations = [rel for r in result.records for rel in r.relations]
    assert len(relations) == len(set((r.kind, r.source_key, r.target_key) for r in relations)) == 3


@pytest.mark.parametrize(
    ("key", "engine"),
    [
        ("aws_rds:crm-sql", "mssql"),
        ("aws_rds:erp-oracle", "oracle"),
        ("aws_rds:legacy-stopped", "mariadb"),
        ("aws_rds:new-reporting", "mysql"),
    ],
)
def test_engines(instances, key, engine):
    assert by_key(instances)[key].fields["engine"] == engine


def test_documentdb_is_other_and_an_unknown_engine_is_a_warning(instances, clusters):
    docdb = by_key(clusters)["aws_rds_cluster:docs-store"]
    assert docdb.fields["engine"] == "other" and docdb.fields["metadata"]["aws_engine"] == "docdb"
    influx = by_key(instances)["aws_rds:timeseries"]
    assert "engine" not in influx.fields
    assert influx.warnings == ["engine 'timestream-influxdb' not recognised; left out"]


def test_an_instance_being_created_has_no_endpoint_yet(instances):
    record = by_key(instances)["aws_rds:new-reporting"]
    assert "host" not in record.fields and "port" not in record.fields
    assert "status" not in record.fields and record.fields["metadata"]["aws_status"] == "creating"


def test_stopped_instance_and_tag_problems(instances):
    record = by_key(instances)["aws_rds:legacy-stopped"]
    assert record.fields["status"] == "inactive"
    assert record.fields["tags"] == ["environment=sandbox"]
    assert record.warnings == [
        "tag 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…' is longer than 64 characters; left out",
        "environment 'sandbox' not recognised; left out",
    ]


def test_posture_from_the_api_fields(instances):
    crm = by_key(instances)["aws_rds:crm-sql"]
    assert crm.fields["publicly_accessible"] is True
    oracle = by_key(instances)["aws_rds:erp-oracle"]
    assert (
        oracle.fields["encrypted_at_rest"] is False and oracle.fields["backup_retention_days"] == 0
    )
    assert "tls_required" not in oracle.fields  # a parameter-group setting this output lacks


def test_trimmed_output_without_arns_links_by_record_key():
    data = json.dumps(
        {
            "DBInstances": [
                {
                    "DBInstanceIdentifier": "a",
                    "Engine": "mysql",
                    "AvailabilityZone": "eu-west-1b",
                    "ReadReplicaDBInstanceIdentifiers": ["b"],
                    "DBClusterIdentifier": "c",
                },
                {
                    "DBInstanceIdentifier": "b",
                    "Engine": "mysql",
                    "ReadReplicaSourceDBInstanceIdentifier": "a",
                },
                {"Engine": "mysql"},
            ]
        }
    ).encode()
    a, b, nameless = parse(data).records
    assert a.fields["region"] == "eu-west-1" and "cloud_resource_id" not in a.fields
    assert a.relations == [
        Relation("replicates_to", "aws_rds:a", "aws_rds:b"),
        Relation("member_of", "aws_rds:a", "aws_rds_cluster:c"),
    ]
    assert b.relations == []
    assert (
        nameless.key == "aws_rds:#3"
        and nameless.error == "DB instance without a DBInstanceIdentifier."
    )
