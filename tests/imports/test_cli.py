"""`flask import` and `flask worker` from the command line."""

from __future__ import annotations

from tests.imports.helpers import FIXTURES, count
from webapp.models import Asset, AuditEvent, ImportRun


def test_import_command_runs_the_pipeline_with_a_progress_bar(runner, session):
    result = runner.invoke(args=["import", str(FIXTURES / "nmap_sv.xml"), "--source", "dc1-scan"])
    assert result.exit_code == 0, result.output
    assert "import #1: nmap_sv.xml (nmap-xml, source 'dc1-scan')" in result.output
    assert "records" in result.output  # the progress bar's label
    # the tcpwrapped port on 10.20.0.6 is a sighting-only record, of nothing known yet: skipped
    assert "import #1 succeeded: 9/9 records — 8 created, 0 updated, 0 unchanged, 0 flagged, 1 skipped" in result.output
    assert count(session, Asset) == 8
    assert {e.actor_label for e in session.query(AuditEvent)} == {"import #1"}


def test_import_command_dry_run_and_row_errors(runner, session):
    result = runner.invoke(args=["import", str(FIXTURES / "cmdb_export.csv"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "dry run, nothing will be written" in result.output
    assert "row 4 (csv:4): port '99999'" in result.output
    assert count(session, Asset) == 0 and count(session, AuditEvent) == 0


def test_import_command_refuses_unknown_and_reports_failed_runs(runner, session):
    unknown = runner.invoke(args=["import", str(FIXTURES / "not_a_discovery_file.txt")])
    assert unknown.exit_code == 2 and "Supported formats" in unknown.output
    assert count(session, ImportRun) == 0
    bomb = runner.invoke(args=["import", str(FIXTURES / "nmap_billion_laughs.xml")])
    assert bomb.exit_code == 1 and "entity" in bomb.output
    assert count(session, Asset) == 0


def test_worker_needs_redis(app, runner):
    app.config["REDIS_URL"] = None
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 2 and "REDIS_URL is not set" in result.output
