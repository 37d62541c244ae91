"""Command line: `flask --app webapp …`."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import User
from webapp.models.base import utcnow
from webapp.services import audit, auth, tokens
from webapp.services.actor import Actor
from webapp.services.errors import ValidationFailed

users_cli = AppGroup("users", help="Manage users.")
audit_cli = AppGroup("audit", help="The audit log.")
tokens_cli = AppGroup("tokens", help="API tokens.")


def _fail(exc: ValidationFailed) -> None:
    for field, message in exc.errors.items():
        click.echo(f"error: {field}: {message}", err=True)
    sys.exit(2)


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True, help="At least 12 characters.")
@click.option("--role", required=True, type=click.Choice(["viewer", "analyst", "reviewer", "admin"]))
@click.option("--name", default="")
def users_create(email: str, password: str, role: str, name: str) -> None:
    """Create a user."""
    try:
        user = auth.create_user(db.session, Actor.cli(), email=email, password=password,
                                role=role, name=name)
    except ValidationFailed as exc:
        _fail(exc)
    click.echo(f"Created {user.role.value} {user.email}")


@users_cli.command("update")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(["viewer", "analyst", "reviewer", "admin"]), default=None)
@click.option("--active/--inactive", default=None, help="Reactivate or deactivate the account.")
def users_update(email: str, role: str | None, active: bool | None) -> None:
    """Change a user's role or deactivate them (the last active admin stays an active admin)."""
    user = db.session.scalar(select(User).where(User.email == auth.normalise_email(email)))
    if user is None:
        click.echo(f"error: no user with email {email}", err=True)
        sys.exit(2)
    try:
        user = auth.update_user(db.session, Actor.cli(), user.id, role=role, active=active)
    except ValidationFailed as exc:
        _fail(exc)
    click.echo(f"{user.email}: {user.role.value}, {'active' if user.active else 'inactive'}")


@tokens_cli.command("create")
@click.option("--email", required=True, help="The user the token acts as.")
@click.option("--name", required=True, help="What uses the token.")
@click.option("--read-only", is_flag=True, help="The token can read but change nothing.")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None,
              help="Expire after this many days (default: never).")
def tokens_create(email: str, name: str, read_only: bool, expires_days: int | None) -> None:
    """Create an API token; the secret is printed once, as the last line."""
    user = db.session.scalar(select(User).where(User.email == auth.normalise_email(email)))
    if user is None or not user.active:
        click.echo(f"error: no active user with email {email}", err=True)
        sys.exit(2)
    expires_at = utcnow() + timedelta(days=expires_days) if expires_days else None
    try:
        token, secret = tokens.create(db.session, Actor.cli(), user, name=name,
                                      read_only=read_only, expires_at=expires_at)
    except ValidationFailed as exc:
        _fail(exc)
    access = "read-only" if token.read_only else "read-write"
    click.echo(f"Created {access} token {token.name!r} ({token.prefix}…) for {user.email}.")
    click.echo(secret)


@audit_cli.command("verify")
@click.option("--anchor", "expect", default=None, metavar="ID:HASH",
              help="An anchor kept elsewhere (from `flask stats` or a backup): that event must be "
                   "in the chain with that hash.")
def audit_verify(expect: str | None) -> None:
    """Walk the hash chain to its anchor; print OK or what is wrong."""
    try:
        expected = audit.Anchor.parse(expect) if expect else None
    except ValueError as exc:
        click.echo(f"error: --anchor: {exc}", err=True)
        sys.exit(2)
    result = audit.verify(db.session, expect=expected)
    if result.ok:
        where = f"; anchor {result.anchor}" if result.anchor else ""
        click.echo(f"OK: {result.checked} events, chain intact up to its anchor{where}")
        return
    at = f" at event {result.first_broken_id}" if result.first_broken_id is not None else ""
    click.echo(f"BROKEN{at}: {result.reason}")
    sys.exit(1)


keys_cli = AppGroup("keys", help="Encryption keys.")


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every secret with the first key of INVENTORY_ENCRYPTION_KEYS."""
    from webapp.services import crypto

    try:
        n = crypto.rotate(db.session, Actor.cli())
    except crypto.EncryptionNotConfigured as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"Re-encrypted {n} secret(s) with the first configured key.")


@click.command("maintenance")
def maintenance() -> None:
    """Purge the trash past its retention and report stale assets (safe to run from cron)."""
    from webapp.services import maintenance as maintenance_service

    result = maintenance_service.run(db.session, Actor.system("maintenance"),
                                     import_stale_seconds=int(current_app.config["IMPORT_STALE_SECONDS"]))
    click.echo(f"Purged {result.purged} asset(s) from the trash; {result.stale} active asset(s) are stale; "
               f"{result.reaped} import(s) whose worker stopped were marked failed.")


@click.command("stats")
def stats() -> None:
    """Counts of the inventory, by engine, environment, criticality and status."""
    from webapp.services import reports

    summary = reports.dashboard(db.session)
    click.echo(f"assets: {summary.total} (in trash: {summary.in_trash}, stale: {summary.stale})")
    click.echo(f"unverified: {summary.unverified}, unowned in production: "
               f"{summary.unowned_production}")
    for title, rows in (("engine", summary.by_engine), ("environment", summary.by_environment),
                        ("criticality", summary.by_criticality), ("status", summary.by_status)):
        click.echo(f"by {title}: " + ", ".join(f"{label or 'not set'} {n}" for label, n in rows))
    anchor = audit.anchor(db.session)
    click.echo(f"audit anchor: {anchor or 'none (no events yet)'}  "
               "(keep a copy; `flask audit verify --anchor ID:HASH` checks the log still reaches it)")


@click.command("demo")
@click.option("--count", default=240, show_default=True, help="How many assets to create.")
@click.option("--seed", default=7, show_default=True)
def demo(count: int, seed: int) -> None:
    """Load a realistic sample inventory through the services (audited like any change)."""
    from webapp.services import demo as demo_service

    created = demo_service.load(db.session, count=count, seed=seed)
    click.echo(f"Loaded {created} demo assets.")


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--source", default=None, help="Source label (default: the format's name).")
@click.option("--dry-run", is_flag=True, help="Show what would change and write nothing.")
def import_file(file: str, source: str | None, dry_run: bool) -> None:
    """Import a discovery file in this process, with a progress bar (same pipeline as an upload)."""
    from pathlib import Path

    from webapp.services import imports

    path = Path(file)
    try:
        run = imports.create_run(db.session, Actor.cli(), data=path.read_bytes(), filename=path.name,
                                 source=source, dry_run=dry_run)
    except ValidationFailed as exc:
        _fail(exc)
    click.echo(f"{run.label}: {run.filename} ({run.format}, source {run.source!r})"
               + (" — dry run, nothing will be written" if run.dry_run else ""))
    bar = None
    done = 0

    def progress(current) -> None:  # type: ignore[no-untyped-def]
        nonlocal bar, done
        if bar is None:
            bar = click.progressbar(length=max(current.total, 1), label="records", show_pos=True,
                                    file=sys.stderr)
            bar.__enter__()
        bar.update(current.processed - done)
        done = current.processed

    try:
        run = imports.execute(db.session, run.id, runner="inline", progress=progress,
                              batch_size=int(current_app.config["IMPORT_BATCH_SIZE"]))
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(f"{run.label} {run.status.value}: {run.processed}/{run.total} records — "
               f"{run.created} created, {run.updated} updated, {run.unchanged} unchanged, "
               f"{run.flagged} flagged, {run.skipped} skipped, {run.failed} failed")
    for error in run.row_errors[:20]:
        click.echo(f"  row {error['row']} ({error['key']}): {error['message']}")
    if len(run.row_errors) > 20:
        click.echo(f"  … {run.failed - 20} more failed records; see the run's page.")
    if run.error:
        click.echo(f"error: {run.error}", err=True)
    if run.status.value != "succeeded":
        sys.exit(1)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst: bool) -> None:
    """Run an RQ worker for background jobs such as imports (needs REDIS_URL)."""
    from flask import current_app

    from webapp import jobs

    if not current_app.config.get("REDIS_URL"):
        click.echo("error: REDIS_URL is not set; without it imports run inside the web server.", err=True)
        sys.exit(2)
    jobs.work(current_app._get_current_object(), burst=burst)


@click.command("scheduler")
@click.option("--in-process", is_flag=True,
              help="Run due tasks in this process even when REDIS_URL is set (no RQ workers).")
def scheduler(in_process: bool) -> None:
    """Start scheduled tasks on their schedules (SPEC §13). With REDIS_URL, RQ's cron scheduler
    enqueues them for `flask worker`; without, they run in this process. Run one: a second
    scheduler waits for the first's database lock."""
    import signal
    import threading

    from webapp.jobs.scheduler import Scheduler

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    mode = "rq" if app.config.get("REDIS_URL") and not in_process else "thread"
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"Scheduler started ({'RQ cron, tasks run by `flask worker`' if mode == 'rq' else 'tasks run in this process'}); "
               "it acts once it holds the database lock.", err=True)
    Scheduler(app, mode=mode).run(stop)
    if mode == "thread":
        from webapp import jobs

        jobs.wait_for_threads()


@click.command("export")
@click.option("--format", "fmt", required=True, type=click.Choice(["csv", "json", "xlsx"]),
              help="csv (UTF-8 with BOM, formula-safe), json (JSON Lines, inventory-json), xlsx.")
@click.option("-o", "--output", default="-", type=click.Path(dir_okay=False, allow_dash=True),
              help="The file to write (default: standard output).")
@click.option("-q", "--q", "q", default=None, help="Words that must all appear (the list's search).")
@click.option("--engine", multiple=True)
@click.option("--environment", multiple=True)
@click.option("--status", multiple=True)
@click.option("--criticality", multiple=True)
@click.option("--data-classification", "data_classification", multiple=True)
@click.option("--owner", default=None)
@click.option("--tag", default=None)
@click.option("--stale/--not-stale", default=None, help="Only stale, or only not stale, assets.")
@click.option("--unverified/--verified", default=None,
              help="Only assets no discovery import has reported, or only those one has.")
@click.option("--unowned/--owned", default=None, help="Only assets without an owner, or only with one.")
@click.option("--policy-failing/--policy-not-failing", "policy_failing", default=None,
              help="Only assets failing any policy control.")
@click.option("--policy", default=None, help="A policy control's id (with --policy-status; default fail).")
@click.option("--policy-status", "policy_status", multiple=True,
              help="pass, fail, unknown or excepted (repeatable).")
@click.option("--include-deleted", is_flag=True, help="Assets in the trash as well.")
@click.option("--sort", default=None, help="A list sort: name, -updated_at, … (default: name).")
def export(fmt: str, output: str, stale: bool | None, include_deleted: bool,
           **filters: str | tuple[str, ...] | None) -> None:
    """Export the assets a list filter matches, in its order (the same code as the web export)."""
    import time

    from webapp.services import asset_search, exports

    args: dict[str, object] = {"stale": stale, "include_deleted": include_deleted or None}
    for name, value in filters.items():  # one value as text, several as a list (multi-value filters)
        args[name] = (value[0] if len(value) == 1 else list(value)) if isinstance(value, tuple) else value
    try:
        query = asset_search.parse_query({k: v for k, v in args.items() if v not in (None, (), [])})
        bar = None
        shown = 0

        def progress(rows: int) -> None:
            nonlocal bar, shown
            if bar is None:
                bar = click.progressbar(length=max(started.count, 1), label="assets", show_pos=True,
                                        file=sys.stderr)
                bar.__enter__()
            bar.update(rows - shown)
            shown = rows

        on_terminal = output != "-" and sys.stderr.isatty()
        began = time.perf_counter()
        started = exports.start(db.session, Actor.cli(), query, fmt,
                                progress=progress if on_terminal else None)
    except ValidationFailed as exc:
        _fail(exc)
    try:
        with click.open_file(output, "wb") as out:
            for chunk in started.chunks:
                out.write(chunk)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    where = "standard output" if output == "-" else output
    click.echo(f"Exported {started.count:,} asset{'' if started.count == 1 else 's'} as "
               f"{started.format.label} to {where} in {time.perf_counter() - began:.2f}s.",
               err=output == "-")


conflicts_cli = AppGroup("conflicts", help="The review queue (SPEC §5, §6).")


@conflicts_cli.command("supersede")
def conflicts_supersede() -> None:
    """Close the open field conflicts that only a higher-precedence source raised: they are
    observations now (the asset's Sources tab), status `superseded`, one audit event each.
    Safe to run again: it then finds nothing."""
    from webapp.services import superseding

    closed = superseding.supersede_observed(db.session, Actor.cli("flask conflicts supersede"))
    click.echo(f"{closed} field conflict{'' if closed == 1 else 's'} superseded by observations.")


policy_cli = AppGroup("policy", help="Policy results (SPEC §12).")


@policy_cli.command("evaluate")
@click.option("--all", "everything", is_flag=True,
              help="Re-evaluate every asset (after a parameter change, or as time passes).")
def policy_evaluate(everything: bool) -> None:
    """Bring policy results up to date: by default the assets that have none yet and the
    exceptions that have expired; with --all, every asset. A progress bar on a terminal."""
    from webapp.services import policy_exceptions, policy_results, policy_runs

    batch_size = int(current_app.config.get("POLICY_BATCH_SIZE") or policy_results.BATCH_SIZE)
    if everything:
        run = policy_runs.queue(db.session, Actor.cli(), trigger="flask policy evaluate --all")
        with _progress_bar("assets") as progress:
            outcome = policy_runs.execute(db.session, run.id, batch_size=batch_size, progress=progress)
        if outcome == "skipped":
            click.echo("A re-evaluation is already running; see /policy for its progress.", err=True)
            sys.exit(1)
        db.session.refresh(run)
        click.echo(f"Re-evaluated every asset: {run.result.get('results', 0):,} policy results, "
                   f"{run.result.get('exceptions_expired', 0):,} exceptions expired.")
        return
    expired = policy_exceptions.expire(db.session)
    if expired:
        click.echo(f"{len(expired):,} exception{'' if len(expired) == 1 else 's'} expired; "
                   "their assets were re-evaluated.")
    with _progress_bar("assets") as progress:
        written = policy_results.evaluate_missing(db.session, progress=progress, batch_size=batch_size)
    click.echo(f"Wrote {written:,} policy result{'' if written == 1 else 's'} for assets that had none.")


@contextlib.contextmanager
def _progress_bar(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A `progress(done, total)` that draws a bar on a terminal, or None off one."""
    if not sys.stderr.isatty():
        yield None
        return
    bar = None
    shown = 0

    def progress(done: int, total: int) -> None:
        nonlocal bar, shown
        if bar is None:
            bar = click.progressbar(length=max(total, 1), label=label, show_pos=True, file=sys.stderr)
            bar.__enter__()
        bar.update(done - shown)
        shown = done

    try:
        yield progress
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def register_cli(app: Flask) -> None:
    app.cli.add_command(import_file)
    app.cli.add_command(worker)
    app.cli.add_command(users_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(maintenance)
    app.cli.add_command(stats)
    app.cli.add_command(demo)
    app.cli.add_command(export)
    app.cli.add_command(policy_cli)
    app.cli.add_command(conflicts_cli)
    app.cli.add_command(scheduler)

    from webapp import cli_ops  # dump, load, backup, validate, optimize, reset, cleanup

    cli_ops.register(app)
