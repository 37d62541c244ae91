"""Operations commands (SPEC §8): dump, load, backup, validate, optimize, reset, cleanup.

Registered by `webapp.cli.register_cli`; the work is in services (dump, load, backups, validate,
database), so the scheduler and tests call the same code.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from flask import Flask, current_app

from webapp.extensions import db
from webapp.services.actor import Actor


def _error(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


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


def register(app: Flask) -> None:
    for command in (dump_command, load_command):
        app.cli.add_command(command)


__all__ = ["current_app", "register"]
