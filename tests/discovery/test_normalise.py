"""Spellings of asset values, as CMDB exports and scanners write them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from webapp.discovery import normalise


@pytest.mark.parametrize(
    ("spelling", "engine", "version"),
    [
        ("postgres", "postgresql", None),
        ("PostgreSQL", "postgresql", None),
        ("pg", "postgresql", None),
        ("PostgreSQL 15.4", "postgresql", "15.4"),
        ("Postgres v15", "postgresql", "15"),
        ("SQL Server", "mssql", None),
        ("MSSQL", "mssql", None),
        ("sqlserver", "mssql", None),
        ("Microsoft SQL Server", "mssql", None),
        ("SQL Server 2019 Enterprise", "mssql", "2019"),
        ("Mongo", "mongodb", None),
        ("mysql8", "mysql", "8"),
        ("MariaDB", "mariadb", None),
        ("Oracle Database 19c Enterprise Edition", "oracle", "19c"),
        ("oracle-ee", "oracle", None),
        ("DB2", "db2", None),
        ("db2 11.5", "db2", "11.5"),
        ("sqlite3", "sqlite", None),
        ("Elastic", "elasticsearch", None),
        ("dynamo", "dynamodb", None),
        ("other", "other", None),
        ("Neo4j", None, None),
        ("informix", None, None),
        ("", None, None),
    ],
)
def test_engine_spellings(spelling, engine, version):
    assert normalise.engine(spelling) == (engine, version)


@pytest.mark.parametrize(
    ("function", "spelling", "value"),
    [
        (normalise.environment, "prod", "production"),
        (normalise.environment, "PRD", "production"),
        (normalise.environment, "live", "production"),
        (normalise.environment, "stg", "staging"),
        (normalise.environment, "Stage", "staging"),
        (normalise.environment, "pre-prod", "staging"),
        (normalise.environment, "dev", "development"),
        (normalise.environment, "qa", "test"),
        (normalise.environment, "UAT", "test"),
        (normalise.environment, "sandbox", None),
        (normalise.criticality, "crit", "critical"),
        (normalise.criticality, "P1", "critical"),
        (normalise.criticality, "1 - most critical", "critical"),
        (normalise.criticality, "P2", "high"),
        (normalise.criticality, "med", "medium"),
        (normalise.criticality, "low", "low"),
        (normalise.criticality, "sev-2", None),
        (normalise.status, "in use", "active"),
        (normalise.status, "Retired", "decommissioned"),
        (normalise.status, "EOL", "deprecated"),
        (normalise.status, "stopped", "inactive"),
        (normalise.data_classification, "Confidential", "confidential"),
        (normalise.data_classification, "internal use only", "internal"),
        (normalise.data_classification, "secret", None),
        (normalise.cloud_provider, "Amazon Web Services", "aws"),
        (normalise.cloud_provider, "Google Cloud", "gcp"),
        (normalise.cloud_provider, "on-premises", "on_prem"),
        (normalise.cloud_provider, "datacenter", "on_prem"),
    ],
)
def test_value_spellings(function, spelling, value):
    assert function(spelling) == value


@pytest.mark.parametrize(
    ("spelling", "value"),
    [
        ("yes", True),
        ("Y", True),
        ("true", True),
        ("1", True),
        (1, True),
        (True, True),
        ("Enabled", True),
        ("no", False),
        ("n", False),
        ("FALSE", False),
        ("0", False),
        (0, False),
        ("off", False),
        ("maybe", None),
        ("", None),
        (2, None),
        (None, None),
    ],
)
def test_booleans(spelling, value):
    assert normalise.boolean(spelling) is value


@pytest.mark.parametrize(
    ("spelling", "value"),
    [
        ("DB01.CORP.EXAMPLE.COM.", "db01.corp.example.com"),
        ("  db01.corp.example.com  ", "db01.corp.example.com"),
        ("10.1.2.3", "10.1.2.3"),
        ("[2001:DB8:0:0::1]", "2001:db8::1"),
        ("2001:0db8::0001", "2001:db8::1"),
        ("a_b.internal", "a_b.internal"),
        ("db 1", None),
        ("SQLPROD01\\SALES", None),
        ("256.1.1.1", None),
        ("010.0.0.1", None),
        ("-leading.example.com", None),
        (".", None),
        ("x" * 64 + ".example.com", None),
    ],
)
def test_hosts_are_lower_case_without_the_root_dot(spelling, value):
    assert normalise.host(spelling) == value


def test_timestamps_are_utc_and_say_whether_a_zone_was_given():
    assert normalise.timestamp("2024-03-12T02:00:00+01:00") == (
        datetime(2024, 3, 12, 1, 0, tzinfo=UTC),
        True,
    )
    assert normalise.timestamp("2024-03-12T02:00:00Z") == (
        datetime(2024, 3, 12, 2, tzinfo=UTC),
        True,
    )
    assert normalise.timestamp("2024-03-12 02:00") == (datetime(2024, 3, 12, 2, tzinfo=UTC), False)
    assert normalise.timestamp("yesterday") is None
