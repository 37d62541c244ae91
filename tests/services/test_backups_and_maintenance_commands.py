"""`flask backup` and its rotation, `reset`, `optimize`, `cleanup --days-old` (issue 16)."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from tests.conftest import base_config
from tests.factories import make_asset
from webapp import create_app
from webapp.extensions import db as _db
from webapp.models import Asset, User
from webapp.models.base import utcnow
from webapp.services import assets, backups, load
from webapp.services.actor import Actor

WHEN = datetime(2026, 12, 1, 3, 0, 0)


def test_backup_writes_a_dump_and_keeps_the_newest(app, session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tmp_path = tmp_path / "backups"  # (the SQLite test database lives in tmp_path itself)
    tmp_path.mkdir()
    make_asset(session)
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("not a backup")
    made = [backups.run_backup(session, backup_dir=tmp_path, keep=2, now=WHEN + timedelta(hours=i)) for i in range(4)]
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["inventory-20261201T050000Z.jsonl.gz", "inventory-20261201T060000Z.jsonl.gz", "notes.txt"]
    assert [p.name for p in made[-1].removed] == ["inventory-20261201T040000Z.jsonl.gz"]
    header = json.loads(_first_line(tmp_path / kept[-2]))
    assert header["tables"]["assets"] == 1 and header["audit_anchor"]["id"] >= 1
    assert made[-1].message.startswith("Backed up") and "removed 1 older backup(s)" in made[-1].message


def _first_line(path: Path) -> str:
    with gzip.open(path, "rb") as f:
        return f.readline().decode()


def test_two_backups_in_one_second_both_stay(app, session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = backups.run_backup(session, backup_dir=tmp_path, keep=5, now=WHEN)
    second = backups.run_backup(session, backup_dir=tmp_path, keep=5, now=WHEN)
    assert first.path != second.path and first.path.exists() and second.path.exists()


def test_backup_command_uses_backup_dir_and_says_what_it_did(app_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "backups"
    app = create_app(app_config | {"BACKUP_DIR": str(target), "BACKUP_KEEP": 3})
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["backup"])
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"Backed up 0 rows of {len(load.dump.sections())} tables to {target}")
        assert len(backups.backups(target)) == 1
        _db.session.remove()
        _db.engine.dispose()


def test_backup_fails_clearly_and_leaves_nothing(app, session, tmp_path: Path, app_config) -> None:  # type: ignore[no-untyped-def]
    runner = app.test_cli_runner()
    no_dir = runner.invoke(args=["backup"])
    assert no_dir.exit_code == 1 and "BACKUP_DIR is not set" in no_dir.output
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    unwritable = runner.invoke(args=["backup", "--dir", str(blocked / "sub")])
    assert unwritable.exit_code == 1 and "Cannot create the backup directory" in unwritable.output
    assert "Traceback" not in unwritable.output

    def disk_full(done: int, total: int) -> None:
        raise OSError(28, "No space left on device")

    make_asset(session)
    target = tmp_path / "full"
    older = backups.run_backup(session, backup_dir=target, keep=1, now=WHEN)
    with pytest.raises(backups.BackupFailed, match="No space left on device"):
        backups.run_backup(session, backup_dir=target, keep=1, now=WHEN + timedelta(days=1), progress=disk_full)
    assert sorted(target.iterdir()) == [older.path]  # the partial file removed, the older backup kept


def test_reset_is_refused_outside_development_and_without_yes(app_config) -> None:  # type: ignore[no-untyped-def]
    production = create_app(app_config | {"ENV_NAME": "production"})
    with production.app_context():
        result = production.test_cli_runner().invoke(args=["reset", "--yes"])
        assert result.exit_code == 2 and "INVENTORY_ENV=development" in result.output
        assert inspect(_db.engine).has_table("assets")
        _db.session.remove()
        _db.engine.dispose()
    development = create_app(app_config | {"ENV_NAME": "development"})
    with development.app_context():
        result = development.test_cli_runner().invoke(args=["reset"])
        assert result.exit_code == 2 and "--yes" in result.output
        assert inspect(_db.engine).has_table("assets")
        _db.session.remove()
        _db.engine.dispose()


def test_reset_in_development_rebuilds_an_empty_schema(sqlite_template: Path, tmp_path: Path) -> None:
    import shutil

    path = tmp_path / "dev.db"
    shutil.copy(sqlite_template, path)
    app = create_app(base_config(f"sqlite:///{path}") | {"ENV_NAME": "development"})
    with app.app_context():
        make_asset(_db.session)
        _db.session.remove()
        result = app.test_cli_runner().invoke(args=["reset", "--yes"])
        assert result.exit_code == 0, result.output
        assert "Dropped" in result.output and "assets" in result.output and "migrated the empty schema" in result.output
        assert _db.session.scalar(select(func.count()).select_from(Asset)) == 0
        assert _db.session.scalar(select(func.count()).select_from(User)) == 0
        _db.session.remove()
        _db.engine.dispose()


def test_optimize_reports_what_it_did(app, session, runner) -> None:  # type: ignore[no-untyped-def]
    make_asset(session)
    result = runner.invoke(args=["optimize"])
    assert result.exit_code == 0, result.output
    if session.get_bind().dialect.name == "postgresql":
        assert "VACUUM (ANALYZE) of" in result.output and "dead tuples" in result.output
        assert "assets" in result.output
    else:
        assert "PRAGMA optimize and VACUUM" in result.output


def test_cleanup_is_maintenance_with_the_trash_age_given(app, session, runner) -> None:  # type: ignore[no-untyped-def]
    old, recent = make_asset(session), make_asset(session)
    for asset in (old, recent):
        assets.delete(session, Actor.cli(), asset.id)
    session.get(Asset, old.id).deleted_at = utcnow() - timedelta(days=10)
    session.commit()
    result = runner.invoke(args=["cleanup", "--days-old", "5"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Purged 1 asset(s) from the trash")
    session.expire_all()
    assert session.get(Asset, old.id) is None and session.get(Asset, recent.id) is not None
    maintenance = runner.invoke(args=["maintenance"])  # the setting's 30 days: nothing more
    assert maintenance.output.startswith("Purged 0 asset(s)")
    bad = runner.invoke(args=["cleanup", "--days-old", "0"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_reset_on_postgresql_rebuilds_the_schema(require_postgres, admin_url_for_new_database) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import migrate_to_head

    url = admin_url_for_new_database()
    migrate_to_head(url)
    app = create_app(base_config(url) | {"ENV_NAME": "development"})
    with app.app_context():
        make_asset(_db.session)
        _db.session.remove()
        result = app.test_cli_runner().invoke(args=["reset", "--yes"])
        assert result.exit_code == 0, result.output
        assert "audit_events" in result.output and "migrated the empty schema" in result.output
        assert _db.session.scalar(select(func.count()).select_from(Asset)) == 0
        assert app.test_cli_runner().invoke(args=["validate"]).exit_code == 0  # the audit guard is back too
        from sqlalchemy import text

        triggers = _db.session.scalar(text("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'audit_events_no_%'"))
        assert triggers == 2
        _db.session.remove()
        _db.engine.dispose()


def test_export_takes_the_lists_unowned_unverified_and_policy_filters(session, runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    make_asset(session, name="owned-db")
    make_asset(session, name="nobodys-db", owner=None)
    out = tmp_path / "unowned.json"
    result = runner.invoke(args=["export", "--format", "json", "--unowned", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["name"] for line in out.read_text().splitlines()] == ["nobodys-db"]
    failing = tmp_path / "failing.json"
    result = runner.invoke(args=["export", "--format", "json", "--policy", "ownership.owner_set",
                                 "--policy-status", "fail", "--unverified", "-o", str(failing)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["name"] for line in failing.read_text().splitlines()] == ["nobodys-db"]
    bad = runner.invoke(args=["export", "--format", "csv", "--policy", "no.such.control"])
    assert bad.exit_code == 2 and "policy" in bad.output and "Traceback" not in bad.output
