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
    assert result.level == "strong"
    assert result.reasons[0] == "strong: same host:port orders-db.corp.example.com:5432 (+0.95)"


def test_an_alias_with_the_port_is_as_strong_as_the_host():
    record = {"name": "x", "engine": "postgresql", "host": "10.0.0.7", "port": 5432}
    result = score(record, {**ORDERS, "aliases": ["10.0.0.7"]})
    assert result.strong


def test_same_cloud_id_decides_alone_and_different_ones_veto():
    arn = "arn:aws:rds:eu-west-1:1:db:orders"
    same = score({"name": "a", "engine": "postgresql", "cloud_resource_id": arn},
                 {**ORDERS, "cloud_resource_id": arn, "environment": "staging"})
    assert same.strong and same.confidence == pytest.approx(0.99)
    assert same.reasons == ["strong: same cloud_resource_id (+0.99)"]
    other = score({**ORDERS, "cloud_resource_id": arn}, {**ORDERS, "cloud_resource_id": arn + "-2"})
    assert other.veto == "different cloud_resource_id" and other.confidence == 0
    assert other.reasons == ["veto: different cloud_resource_id"]


def test_short_host_equal_to_the_first_label_of_an_fqdn_with_port_and_engine_is_medium():
    record = {"name": "x", "engine": "postgresql", "host": "orders-db", "port": 5432}
    result = score(record, ORDERS)
    assert result.level == "medium" and not result.strong
    assert result.reasons == ["medium: short host name orders-db = first label of orders-db.corp.example.com, "
                              "same port 5432 and engine family postgresql (+0.88)"]
    # medium alone stays below the default auto-merge threshold: a reviewer decides ...
    assert result.confidence == pytest.approx(matching.MEDIUM) and result.confidence < 0.90
    # ... unless something corroborates it (here a compatible version)
    versioned = score({**record, "engine_version": "16"}, {**ORDERS, "engine_version": "16.2"})
    assert versioned.level == "medium" and versioned.confidence >= 0.90
    # without the port, a short host name is weak evidence only
    assert score({**record, "port": None}, ORDERS).level == "weak"


def test_a_name_equal_to_the_cloud_identifier_with_port_and_engine_is_medium():
    candidate = {"name": "Orders (prod)", "engine": "postgresql", "port": 5432,
                 "cloud_resource_id": "arn:aws:rds:eu-west-1:1:db:orders-prod"}
    result = score({"name": "orders-prod", "engine": "postgresql", "port": 5432}, candidate)
    assert result.level == "medium"
    assert result.reasons == ["medium: name equals the cloud identifier, same port 5432 and engine family "
                              "postgresql (+0.88)"]
    alone = score({"name": "orders-prod", "engine": "postgresql"}, {**candidate, "port": None})
    assert (alone.level, alone.reasons) == ("weak", ["weak: name equals the cloud identifier (+0.50)"])


def test_name_similarity_only_corroborates():
    close = score({"name": "ordersdb1", "engine": "postgresql", "host": "a.example.com", "port": 5432},
                  {**ORDERS, "name": "orders-db-1"})
    assert any(r.startswith("corroborating: name similarity 0.9") for r in close.reasons)
    assert close.level is None
    far = score({"name": "billing", "engine": "postgresql", "host": "a.example.com", "port": 5432}, ORDERS)
    assert far.reasons == [] and far.confidence == 0


def test_same_database_name_on_another_host_only_corroborates():
    record = {"name": "x", "engine": "postgresql", "host": "other.example.com", "port": 5432,
              "database_name": "orders"}
    result = score(record, ORDERS)
    assert result.reasons == ["corroborating: same database name orders on another host (+0.20)"]
    assert result.confidence == pytest.approx(0.20) and result.level is None


def test_contributions_combine_as_independent_evidence():
    record = {"name": "orders-db", "engine": "postgresql", "host": "orders-db", "database_name": "orders"}
    result = score(record, ORDERS)
    # short host 0.55 (no port: weak), name tokens 1.00 * 0.45, same database 0.20
    expected = 1 - (1 - 0.55) * (1 - 0.45) * (1 - 0.20)
    assert result.confidence == pytest.approx(expected)
    assert len(result.reasons) == 3
    assert result.level == "weak" and not result.strong  # weak evidence alone never merges


# --- weak evidence: name tokens -----------------------------------------------------------------

@pytest.mark.parametrize("name, tokens", [
    ("Billing DB", ["billing"]),
    ("prod-billing-pg", ["billing"]),
    ("RoutePlanner", ["route", "planner"]),
    ("ROUTEPLAN-PRD", ["routeplan"]),
    ("crm_sqlserver.stg", ["crm"]),
    ("Booking DB (DR Frankfurt)", ["booking", "frankfurt"]),
    ("orders-db-01", ["orders"]),
    ("tariffdb.ofr.lan:5432", []),  # nmap's made-up host:port name says nothing
    ("10.0.0.5:5432", []),
])
def test_name_tokens_split_on_separators_and_case_and_drop_environment_engine_and_role_words(name, tokens):
    assert identifiers.name_tokens(name) == tokens


def test_shared_name_tokens_same_engine_family_and_compatible_versions_are_weak():
    cmdb = {"name": "Billing DB", "engine": "postgresql", "engine_version": "16",
            "host": "pgbill01.corp.example.com", "port": 5432, "environment": "production"}
    catalogue = {"name": "prod-billing-pg", "engine": "postgresql", "engine_version": "POSTGRES_16_2",
                 "host": "billing.corp.example.com", "port": 5432}
    result = score(catalogue, cmdb)
    assert result.level == "weak" and not result.strong
    assert result.reasons[0] == ("weak: name tokens in common (billing), same engine family, "
                                 "port 5432 (+0.45)")
    assert any(r.startswith("corroborating: compatible versions POSTGRES_16_2 / 16") for r in result.reasons)
    assert result.confidence < 0.90  # and the decider never merges on weak evidence alone


@pytest.mark.parametrize("change, why", [
    ({"engine_version": "11"}, "versions differ"),
    ({"port": 6432}, "different ports"),
    ({"name": "Billing DB replica"}, "one name says replica"),
    ({"name": "billing-02"}, "different numbers"),
    ({"name": "Billing (staging)"}, "different environments"),
    ({"cloud_provider": "aws"}, "different clouds"),
    ({"region": "eu-west-1"}, "different regions"),
])
def test_contrary_evidence_keeps_shared_tokens_from_being_weak_evidence(change, why):
    cmdb = {"name": "Billing DB", "engine": "postgresql", "engine_version": "16", "host": "a.example.com",
            "port": 5432, "cloud_provider": "on_prem", "region": "eu-north-1"}
    record = {"name": "prod-billing", "engine": "postgresql", "engine_version": "16.2", "host": "b.example.com",
              "port": 5432, "cloud_provider": "on_prem", "region": "eu-north-1"}
    assert score(record, cmdb).level == "weak"
    if why == "different numbers":
        cmdb["name"] = "billing-01"
    if why == "different environments":  # environment words in both names are compared
        cmdb["name"] = "Billing PRD"
    result = score({**record, **change}, cmdb)
    assert result.level is None
    assert any(why in d for d in result.doubts), result.reasons


@pytest.mark.parametrize("engine, a, b, compatible", [
    ("mysql", "8.0", "8.0.36-log", True),
    ("postgresql", "16", "POSTGRES_16_2", True),
    ("mssql", "2022", "16.0.4105.0", True),
    ("mssql", "SQL Server 2019", "15.00.4312.00; RTM+", True),
    ("mssql", "16.0", "16.00.4105.00", True),
    ("mysql", "8.0", "8.0.mysql_aurora.3.05.2", True),
    ("oracle", "19c", "19.0.0.0.ru-2024-10.rur-2024-10.r1", True),
    ("postgresql", "15.4", "15.5", False),
    ("postgresql", "10", "16.2", False),
    ("mssql", "2019", "16.0", False),
    ("postgresql", "9.6.0 or later", "9.6.24", None),
    ("postgresql", None, "16", None),
])
def test_versions_are_compatible_when_one_is_a_prefix_or_vendor_spelling_of_the_other(engine, a, b, compatible):
    assert matching.versions_compatible(engine, a, b) is compatible
    assert matching.versions_compatible(engine, b, a) is compatible


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
    assert keys == ["short:orders-db", "name:orders-db-prod", "name:orders-prod", "tok:orders"]
    assert identifiers.keys_for({"name": "ab", "host": "h.example.com", "port": 1}) == [
        "ep:h.example.com:1", "short:h", "name:ab", "tok:ab"]


def test_old_and_current_cloud_sql_self_links_are_one_identifier():
    old = "https://www.googleapis.com/sql/v1beta4/projects/p/instances/bi"
    new = "https://sqladmin.googleapis.com/sql/v1beta4/projects/p/instances/bi"
    assert identifiers.cloud_key(old) == identifiers.cloud_key(new) == f"cloud:{new}"
    same = score({"name": "a", "engine": "mssql", "cloud_resource_id": old},
                 {"name": "b", "engine": "mssql", "cloud_resource_id": new})
    assert same.strong


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
