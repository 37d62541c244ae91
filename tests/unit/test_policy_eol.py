"""The engine end-of-life table shipped with the code (webapp/policy/data/engine_eol.json): its
format, its source and date, and how version strings match its cycles."""

from __future__ import annotations

import json
from datetime import date

import pytest

from webapp.models.enums import Engine
from webapp.policy import eol

TODAY = date(2026, 12, 7)


@pytest.fixture(scope="module")
def raw() -> dict:
    with eol.DATA_FILE.open(encoding="utf-8") as fh:
        return json.load(fh)


def test_table_says_where_it_comes_from_and_when(raw):
    compiled = date.fromisoformat(raw["compiled_at"])
    assert date(2026, 1, 1) <= compiled <= date.today()
    assert "endoflife.date" in raw["source"]["data"]
    assert raw["source"]["checked"]
    assert raw["meaning"] and raw["matching"]


def test_every_row_has_engine_cycle_and_eol(raw):
    engines = {e.value for e in Engine}
    seen = set()
    for row in raw["cycles"]:
        assert {"engine", "cycle", "eol"} <= row.keys(), row
        assert row["engine"] in engines, row
        assert all(part.isdigit() for part in row["cycle"].split(".")), row
        # a date, or null: no end of life announced
        if row["eol"] is not None:
            eol_date = date.fromisoformat(row["eol"])
            if row.get("released"):
                assert date.fromisoformat(row["released"]) <= eol_date, row
        assert (row["engine"], row["cycle"]) not in seen, row
        seen.add((row["engine"], row["cycle"]))


def test_every_versioned_engine_of_spec_3_has_cycles(raw):
    covered = {row["engine"] for row in raw["cycles"]}
    versioned = {e.value for e in Engine} - {"dynamodb", "other"}
    assert covered == versioned
    assert set(raw["source"]["vendor_pages"]) == versioned


def test_a_row_without_an_eol_is_refused(raw):
    broken = dict(raw, cycles=[{"engine": "postgresql", "cycle": "16"}])
    with pytest.raises(ValueError, match="row 1"):
        eol.parse_table(broken)
    bad_date = dict(raw, cycles=[{"engine": "postgresql", "cycle": "16", "eol": "soon"}])
    with pytest.raises(ValueError, match="row 1"):
        eol.parse_table(bad_date)


@pytest.mark.parametrize(
    ("engine", "text", "cycle"),
    [
        ("postgresql", "16.4", "16"),
        ("postgresql", "PostgreSQL 9.6.24 on x86_64-pc-linux-gnu", "9.6"),
        ("mysql", "8.0.36-0ubuntu0.22.04.1", "8.0"),
        ("mysql", "5.7.44-log", "5.7"),
        ("mariadb", "5.5.5-10.6.12-MariaDB-0ubuntu0.22.04.1", "10.6"),
        ("mariadb", "11.4.2", "11.4"),
        ("mssql", "Microsoft SQL Server 2019 (RTM-CU22) (KB5027702) - 15.0.4322.2", "15"),
        ("mssql", "SQL Server 2008 R2", "10.50"),
        ("mssql", "SQL Server 2008", "10.0"),
        ("mssql", "16.0.1000.6", "16"),
        ("oracle", "Oracle Database 19c Enterprise Edition Release 19.0.0.0.0", "19"),
        ("oracle", "23ai", "23"),
        ("oracle", "12.2.0.1", "12.2"),
        ("mongodb", "6.0.14", "6.0"),
        ("redis", "7.2.4", "7.2"),
        ("elasticsearch", "7.17.21", "7"),
        ("elasticsearch", "8.19.2", "8.19"),
        ("cassandra", "4.0.11", "4.0"),
        ("db2", "v11.5.9.0", "11.5"),
        ("sqlite", "3.45.1", "3"),
    ],
)
def test_versions_match_their_cycle(engine, text, cycle):
    found = eol.lookup(engine, text, TODAY)
    assert found is not None and found.cycle is not None, found
    assert found.cycle.cycle == cycle


def test_ambiguous_older_and_unlisted_versions():
    mysql8 = eol.lookup("mysql", "8", TODAY)
    assert mysql8.cycle is None and [c.cycle for c in mysql8.candidates] == [
        "8.4",
        "8.3",
        "8.2",
        "8.1",
        "8.0",
    ]
    # an unlisted minor older than an ended listed one of the same major has ended
    es = eol.lookup("elasticsearch", "8.11.0", TODAY)
    assert es.older_than is not None and es.older_than.cycle == "8.16"
    # older than the oldest cycle the table keeps
    assert eol.lookup("redis", "4.0.14", TODAY).older_than.cycle == "5.0"
    # newer than anything in the table: not known
    future = eol.lookup("postgresql", "27.0", TODAY)
    assert future.cycle is None and not future.candidates and future.older_than is None
    assert eol.lookup("postgresql", "latest", TODAY) is None
