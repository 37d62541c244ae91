"""What a cloud listing covers (SPEC §6, honest staleness): its accounts, regions and kinds."""

from __future__ import annotations

from tests.discovery.helpers import parse_fixture
from webapp.discovery import parse
from webapp.discovery.coverage import Coverage, cloud_scope

ARN = "arn:aws:rds:eu-west-1:123456789012:db:orders"


def test_scopes_from_arns_self_links_and_azure_ids():
    assert cloud_scope(ARN, None) == ("aws", "123456789012", "eu-west-1", "db")
    assert cloud_scope("arn:aws-us-gov:rds:us-gov-west-1:1111:cluster:c1", "x") == (
        "aws-us-gov", "1111", "us-gov-west-1", "cluster")
    link = "https://sqladmin.googleapis.com/sql/v1beta4/projects/acme-prod/instances/orders"
    assert cloud_scope(link, "europe-west1") == ("gcp", "acme-prod", "europe-west1", "instances")
    assert cloud_scope(link, None) is None  # the region is not in a self-link
    azure = ("/subscriptions/0000-aaaa/resourcegroups/rg1/providers/"
             "microsoft.dbforpostgresql/flexibleservers/pg1")
    assert cloud_scope(azure, "West Europe") == (
        "azure", "0000-aaaa", "westeurope", "microsoft.dbforpostgresql/flexibleservers")
    assert cloud_scope("db1.example.com", "eu") is None


def test_an_rds_listing_covers_its_accounts_and_regions_by_kind():
    data = (
        b'{"DBInstances": [{"DBInstanceIdentifier": "orders", "Engine": "postgres",'
        b' "DBInstanceArn": "arn:aws:rds:eu-west-1:123456789012:db:orders"},'
        b' {"DBInstanceIdentifier": "dr", "Engine": "postgres",'
        b' "DBInstanceArn": "arn:aws:rds:us-east-1:123456789012:db:dr"}]}'
    )
    covered = parse(data, filename="rds.json").coverage
    assert sorted(covered.scopes) == [("aws", "123456789012", "eu-west-1", "db"),
                                      ("aws", "123456789012", "us-east-1", "db")]
    assert covered.covers_cloud("arn:aws:rds:eu-west-1:123456789012:db:gone", None)
    # another account, another region, or a cluster (describe-db-clusters was not listed)
    assert not covered.covers_cloud("arn:aws:rds:eu-west-1:999999999999:db:x", None)
    assert not covered.covers_cloud("arn:aws:rds:eu-central-1:123456789012:db:x", None)
    assert not covered.covers_cloud("arn:aws:rds:eu-west-1:123456789012:cluster:x", None)
    assert Coverage.from_json(covered.as_json()) == covered


def test_every_cloud_fixture_has_a_coverage_of_its_records():
    for name, provider in (("aws_rds_both.json", "aws"), ("gcp_sql_instances.json", "gcp"),
                           ("azure_postgres_flexible.json", "azure"), ("azure_sql_servers.json", "azure")):
        result = parse_fixture(name)
        assert result.coverage is not None and result.coverage.scopes, name
        assert {s[0].split("-")[0] for s in result.coverage.scopes} == {provider}
        for record in result.records:
            fields = record.fields
            if record.error is None and fields.get("cloud_resource_id") and fields.get("region"):
                assert result.coverage.covers_cloud(fields["cloud_resource_id"], fields["region"])
