"""Scoring, vetoes and source precedence (webapp.services.matching), as unit tests."""

from __future__ import annotations

import pytest

from webapp.discovery.base import Relation
from webapp.services import identifiers, matching

ORDERS = {"name": "orders-db", "engine": "postgresql", "host": "orders-db.corp.example.com", "port": 5432,
          "database_name": "orders", "environment": "production"}


def score(record, candidate, linked=()):  # type: ignore[no-untyped-def]
    names = identifiers.names(record)
    return matching.score(record, names, candidate, linked=linked)


# --- evidence ---------------------------------------------------------------------------------

def test_same_host_and_port_is_strong_and_reaches_the_auto_merge_level():
    result = score({**ORDERS, "host": "ORDERS-DB.corp.example.com.", "name": "x"}, ORDERS)
    assert result.strong and result.veto is None
    assert result.confidence >= matching.STRONG_MIN
    assert result.reasons[0] == "same host:port orders-db.corp.example.com:5432 (+0.95)"


def test_an_alias_with_the_port_is_as_strong_as_the_host():
    record = {"name": "x", "engine": "postgresql", "host": "10.0.0.7", "port": 5432}
    result = score(record, {**ORDERS, "aliases": ["10.0.0.7"]})
    assert result.strong


def test_same_cloud_id_decides_alone_and_different_ones_veto():
    arn = "arn:aws:rds:eu-west-1:1:db:orders"
    same = score({"name": "a", "engine": "postgresql", "cloud_resource_id": arn},
                 {**ORDERS, "cloud_resource_id": arn, "environment": "staging"})
    assert same.strong and same.confidence == pytest.approx(0.99)
    assert same.reasons == ["same cloud_resource_id (+0.99)"]
    other = score({**ORDERS, "cloud_resource_id": arn}, {**ORDERS, "cloud_resource_id": arn + "-2"})
    assert other.veto == "different cloud_resource_id" and other.confidence == 0
    assert other.reasons == ["veto: different cloud_resource_id"]


def test_short_host_equal_to_the_first_label_of_an_fqdn_is_medium_evidence():
    record = {"name": "orders-db", "engine": "postgresql", "host": "orders-db"}
    result = score(record, ORDERS)
    assert not result.strong
    assert "short host name orders-db = first label of orders-db.corp.example.com (+0.55)" in result.reasons
    assert matching.SHORT_HOST < result.confidence < matching.STRONG_MIN


def test_a_name_equal_to_the_cloud_identifier_is_medium_evidence():
    candidate = {"name": "Orders (prod)", "engine": "postgresql",
                 "cloud_resource_id": "arn:aws:rds:eu-west-1:1:db:orders-prod"}
    result = score({"name": "orders-prod", "engine": "postgresql"}, candidate)
    assert result.reasons == ["name equals the cloud identifier (+0.50)"]


def test_name_similarity_counts_only_when_close():
    close = score({"name": "orders-db1", "engine": "postgresql", "host": "a.example.com", "port": 1},
                  {**ORDERS, "name": "orders-db-1"})
    assert any(r.startswith("name similarity 0.9") for r in close.reasons)
    far = score({"name": "billing", "engine": "postgresql", "host": "a.example.com", "port": 1}, ORDERS)
    assert far.reasons == [] and far.confidence == 0


def test_same_database_name_on_another_host_is_weak():
    record = {"name": "x", "engine": "postgresql", "host": "other.example.com", "port": 5432,
              "database_name": "orders"}
    result = score(record, ORDERS)
    assert result.reasons == ["same database name orders on another host (+0.20)"]
    assert result.confidence == pytest.approx(0.20)


def test_contributions_combine_as_independent_evidence():
    record = {"name": "orders-db", "engine": "postgresql", "host": "orders-db", "database_name": "orders"}
    result = score(record, ORDERS)
    # short host 0.55, name similarity 1.00 * 0.45, same database 0.20
    expected = 1 - (1 - 0.55) * (1 - 0.45) * (1 - 0.20)
    assert result.confidence == pytest.approx(expected)
    assert len(result.reasons) == 3
    assert not result.strong  # weak and medium evidence alone never merges


# --- vetoes -----------------------------------------------------------------------------------

def test_same_host_on_a_different_port_is_vetoed():
    result = score({**ORDERS, "port": 5433}, ORDERS)
    assert result.veto == "same host orders-db.corp.example.com, different port (5433 vs 5432)"
    assert result.confidence == 0 and not result.strong


def test_different_databases_on_one_endpoint_are_vetoed():
    result = score({**ORDERS, "database_name": "billing"}, ORDERS)
    assert result.veto is not None and "different databases" in result.veto


def test_production_against_non_production_is_vetoed_but_unknown_is_not():
    assert score({**ORDERS, "environment": "staging"}, ORDERS).veto == "non-production against production"
    assert score({**ORDERS, "environment": "unknown"}, ORDERS).strong
    assert score({**ORDERS, "environment": "test"}, {**ORDERS, "environment": "development"}).strong


def test_incompatible_engines_are_vetoed_but_mariadb_is_mysql():
    assert score({**ORDERS, "engine": "mysql"}, ORDERS).veto == "different engines (mysql vs postgresql)"
    mysql = {**ORDERS, "engine": "mysql", "port": 3306}
    assert score({**mysql, "engine": "mariadb"}, mysql).strong
    assert score({**mysql, "engine": "other"}, mysql).strong


def test_a_replica_against_its_primary_is_vetoed():
    primary = {"name": "orders", "engine": "postgresql", "host": "orders.example.com", "port": 5432}
    replica = {"name": "orders-replica", "engine": "postgresql", "host": "orders.example.com", "port": 5432}
    links = matching.link_pairs([Relation("replicates_to", "aws_rds:orders", "aws_rds:orders-replica")])
    assert score(replica, primary).strong  # without the link, the endpoint decides
    result = score(replica, primary, linked=links)
    assert result.veto == "a replica and its primary"
    arn = "arn:aws:rds:eu-west-1:1:db:"
    by_arn = matching.link_pairs([Relation("replicates_to", arn + "orders", arn + "orders-replica")])
    assert score({**replica, "cloud_resource_id": arn + "orders-replica"}, primary, linked=by_arn).veto


# --- blocking keys ----------------------------------------------------------------------------

def test_blocking_keys_are_short_labels_and_loose_names():
    keys = identifiers.blocking_keys({"name": "Orders DB (prod)", "host": "Orders-DB.corp.example.com.",
                                      "aliases": ["10.0.0.7", "orders-db"],
                                      "cloud_resource_id": "arn:aws:rds:eu-west-1:1:db:orders-prod"})
    assert keys == ["short:orders-db", "name:orders-db-prod", "name:orders-prod"]
    assert identifiers.keys_for({"name": "a", "host": "h.example.com", "port": 1}) == [
        "ep:h.example.com:1", "short:h", "name:a"]


# --- source precedence ------------------------------------------------------------------------

PRECEDENCE = matching.Precedence(["manual", "aws", "gcp", "azure", "nmap", "csv", "inventory"],
                                 ["manual", "csv", "inventory", "aws", "gcp", "azure", "nmap"])


def test_technical_fields_follow_cloud_then_scanner_then_csv():
    assert PRECEDENCE.outranks("engine_version", "aws", "nmap")
    assert PRECEDENCE.outranks("port", "nmap", "csv")
    assert not PRECEDENCE.outranks("engine_version", "csv", "nmap")
    assert not PRECEDENCE.outranks("engine_version", "nmap", "nmap")  # the same source may update


def test_business_fields_follow_csv_then_cloud_tags_and_manual_is_always_highest():
    assert PRECEDENCE.outranks("owner", "csv", "aws")
    assert not PRECEDENCE.outranks("criticality", "aws", "csv")
    assert PRECEDENCE.outranks("data_classification", "manual", "csv")
    assert PRECEDENCE.outranks("engine_version", "manual", "aws")
    assert PRECEDENCE.rank("owner", "manual") == -1


def test_unlisted_sources_rank_lowest_and_formats_name_their_kind():
    assert PRECEDENCE.outranks("owner", "nmap", "legacy-cmdb")
    assert not PRECEDENCE.outranks("owner", "legacy-cmdb", "nmap")
    assert matching.source_kind("scanner-eu", "nmap-xml", PRECEDENCE.known) == "nmap"
    assert matching.source_kind("aws", "csv", PRECEDENCE.known) == "aws"  # a listed label wins
    assert matching.source_kind("nmap-xml", None) == "nmap"
    assert matching.source_kind("manual", "csv") == "manual"


@pytest.mark.parametrize("value, is_range", [
    ("9.6.0 or later", True), ("5.0.0 - 5.1.2", True), ("8.x", True), ("< 10", True),
    ("16.2", False), ("8.0.36-0ubuntu0.22.04.1", False), ("2019 CU18", False),
])
def test_version_ranges_are_not_exact_values(value, is_range):
    assert matching.is_version_range(value) is is_range
