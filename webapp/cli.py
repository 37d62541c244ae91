"""Command line: `flask --app webapp …`."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from webapp.extensions import db
from webapp.services import audit, auth
from webapp.services.actor import Actor
from webapp.services.errors import ValidationFailed

users_cli = AppGroup("users", help="Manage users.")
audit_cli = AppGroup("audit", help="The audit log.")


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


@audit_cli.command("verify")
def audit_verify() -> None:
    """Walk the hash chain; print OK or the first broken event."""
    result = audit.verify(db.session)
    if result.ok:
        click.echo(f"OK: {result.checked} events, chain intact")
        return
    click.echo(f"BROKEN at event {result.first_broken_id}: {result.reason}")
    sys.exit(1)


@click.command("demo")
@click.option("--count", default=240, show_default=True, help="How many assets to create.")
@click.option("--seed", default=7, show_default=True)
def demo(count: int, seed: int) -> None:
    """Load a realistic sample inventory through the services (audited like any change)."""
    from webapp.services import demo as demo_service

    created = demo_service.load(db.session, count=count, seed=seed)
    click.echo(f"Loaded {created} demo assets.")


def register_cli(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(demo)
