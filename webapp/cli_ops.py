"""Operations commands (SPEC §8): dump, load, backup, validate, optimize, reset, cleanup.

Registered by `webapp.cli.register_cli`; the work is in services (dump, load, backups, validate,
database), so the scheduler and tests call the same code.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import psycopg
from flask import Flask, current_app
from sqlalchemy.exc import DBAPIError

from webapp.extensions import db
from webapp.services.actor import Actor


def _error(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _database_errors(command: Callable[..., None]) -> Callable[..., None]:
    """A database that is down or refuses is a clear message and exit 1, not a traceback."""

    @functools.wraps(command)
    def wrapped(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except (DBAPIError, psycopg.Error) as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            _error(f"the database failed: {reason}", 1)

    return wrapped


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@click.command("dump")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def dump_command(file: str, force: bool) -> None:
    """Write every table to FILE as portable JSON Lines (gzip if FILE ends in .gz), from one
    consistent snapshot; secrets stay encrypted."""
    from webapp.cli import _progress_bar
    from webapp.services import dump

    began = time.perf_counter()
    try:
        with _progress_bar("rows") as progress:
            result = dump.write_dump(db.engine, file, progress=progress, overwrite=force)
    except dump.DumpFailed as exc:
        _error(str(exc))
    keys = ", ".join(k["fingerprint"] for k in result.keys) or "none (no secrets)"
    click.echo(f"Dumped {result.rows:,} rows of {len(result.tables)} tables to {file} "
               f"({_size(result.bytes_written)}) in {time.perf_counter() - began:.2f}s.")
    click.echo(f"audit anchor: {result.anchor or 'none (no events)'}; secrets need key(s): {keys}")
    if result.undecryptable:
        table, key, column = result.undecryptable[0]
        click.echo(f"warning: {len(result.undecryptable)} secret(s) decrypt with none of the configured keys "
                   f"(first: {table} {key} {column}); run `flask validate`.", err=True)


@click.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
def load_command(file: str) -> None:
    """Load a dump into this empty database (run `db upgrade` first): one transaction, the audit
    chain and the counts verified before it commits."""
    from webapp.cli import _progress_bar
    from webapp.services import load

    began = time.perf_counter()
    try:
        with _progress_bar("rows") as progress:
            result = load.load(db.session, Path(file), Actor.cli("flask load"), progress=progress)
    except load.LoadRefused as exc:
        _error(str(exc), 1)
    click.echo(f"Loaded {result.rows:,} rows of {len(result.tables)} tables from {file} in "
               f"{time.perf_counter() - began:.2f}s; audit chain verified to the dump's anchor "
               f"({result.anchor or 'no events'}); recorded as change set #{result.change_set_number}, "
               f"audit event {result.event_id}.")
    if db.engine.dialect.name == "postgresql" and result.rows > 100_000:
        click.echo("Run `flask --app webapp optimize` now: the planner has no statistics for the new rows yet.")


@click.command("backup")
@click.option("--dir", "directory", default=None, type=click.Path(file_okay=False),
              help="Where to write (default: BACKUP_DIR).")
@click.option("--keep", type=click.IntRange(1, 10_000), default=None,
              help="How many backups to keep (default: BACKUP_KEEP, 7).")
@_database_errors
def backup_command(directory: str | None, keep: int | None) -> None:
    """Dump into BACKUP_DIR as inventory-<UTC timestamp>.jsonl.gz; keep the newest BACKUP_KEEP."""
    from webapp.cli import _progress_bar
    from webapp.services import backups

    try:
        with _progress_bar("rows") as progress:
            result = backups.run_backup(db.session, backup_dir=directory, keep=keep, progress=progress)
    except backups.BackupFailed as exc:
        _error(str(exc), 1)
    click.echo(result.message)


@click.command("validate")
@click.option("--repair", is_flag=True,
              help="Rewrite the derived rows found wrong (identifiers, policy results); audited. Never the "
                   "audit log.")
@_database_errors
def validate_command(repair: bool) -> None:
    """Read-only integrity checks; each problem with its ids; exit 1 if any."""
    from webapp.services import validate

    def step(label: str) -> None:
        if sys.stderr.isatty():
            click.echo(f"checking: {label}…", err=True)

    report = validate.check(db.session, repair=repair, actor=Actor.cli("flask validate --repair"),
                            progress=step)
    for problem in report.problems:
        click.echo(f"{problem.kind}: {problem.message}")
    for kind, n in report.unlisted.items():
        click.echo(f"{kind}: … and {n:,} more")
    if report.ok:
        click.echo(f"OK: {len(report.checks)} checks passed ({', '.join(report.checks)}).")
        return
    if report.repaired:
        click.echo("repaired: identifiers of {identifiers:,} asset(s), policy results of {policy_results:,} "
                   "asset(s), {orphan_rows:,} orphan derived row(s) removed (audited as `repair`)."
                   .format(**report.repaired))
        after = validate.check(db.session)
        for problem in after.problems:
            click.echo(f"still: {problem.kind}: {problem.message}")
        if after.ok:
            click.echo(f"OK after repair: {report.count:,} problem(s) found, all in derived rows, now rewritten.")
            return
        click.echo(f"{after.count:,} problem(s) remain that only a person can fix.")
        sys.exit(1)
    click.echo(f"{report.count:,} problem(s) found"
               + ("." if repair else "; `--repair` rewrites the derived ones (identifiers, policy results)."))
    sys.exit(1)


@click.command("optimize")
@_database_errors
def optimize_command() -> None:
    """PostgreSQL: VACUUM (ANALYZE) of every table (dead tuples before and after). SQLite:
    PRAGMA optimize and VACUUM."""
    from webapp.services import database

    report, summary = database.optimize(db.engine)
    for row in report:
        click.echo(f"{row.table:<28} {row.seconds:7.2f}s  dead tuples {row.dead_before or 0:>10,} -> "
                   f"{row.dead_after or 0:,}")
    click.echo(summary)


@click.command("reset")
@click.option("--yes", is_flag=True, help="Confirm: every row of the database is deleted.")
def reset_command(yes: bool) -> None:
    """Drop every table and build the schema again (development only: INVENTORY_ENV=development
    and --yes)."""
    from flask_migrate import upgrade

    from webapp.services import database

    environment = str(current_app.config.get("ENV_NAME") or "")
    db.session.remove()
    try:
        dropped = database.reset(db.engine, environment=environment, confirmed=yes)
    except database.ResetRefused as exc:
        _error(str(exc), 2)
    except DBAPIError as exc:  # e.g. the role does not own the schema
        _error(f"the database refused: {str(exc.orig).strip().splitlines()[0]}", 1)
    db.engine.dispose()
    upgrade()
    click.echo(f"Dropped {len(dropped)} tables ({', '.join(dropped) or 'none'}) of {db.engine.url.render_as_string()}"
               " and migrated the empty schema to head. The next visit to the app shows /setup.")


@click.command("cleanup")
@click.option("--days-old", "days_old", type=click.IntRange(1, 3650), default=None,
              help="Purge assets in the trash longer than this (default: the trash_retention_days setting).")
@_database_errors
def cleanup_command(days_old: int | None) -> None:
    """An alias of `maintenance` (the same service), with the trash's age given on the command line."""
    from webapp.services import maintenance as maintenance_service

    result = maintenance_service.run(db.session, Actor.system("maintenance"),
                                     import_stale_seconds=int(current_app.config["IMPORT_STALE_SECONDS"]),
                                     trash_days=days_old)
    click.echo(f"Purged {result.purged} asset(s) from the trash; {result.stale} active asset(s) are stale; "
               f"{result.reaped} import(s) whose worker stopped were marked failed.")


def register(app: Flask) -> None:
    for command in (dump_command, load_command, backup_command, validate_command, optimize_command,
                    reset_command, cleanup_command):
        app.cli.add_command(command)
