"""The command line (SPEC §8): users create, audit verify, demo."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.conftest import PASSWORD
from webapp.models import (
    Asset,
    AssetRelationship,
    AuditAction,
    AuditEvent,
    PolicyResult,
    PolicyStatus,
    Tag,
    User,
    asset_tags,
)


def test_users_create_makes_a_user_who_can_sign_in(runner, session, client):
    result = runner.invoke(args=[
        "users", "create", "--email", "Ops.Lead@Example.com", "--password", PASSWORD,
        "--role", "reviewer", "--name", "Ops Lead",
    ])
    assert result.exit_code == 0, result.output
    assert "reviewer" in result.output and "ops.lead@example.com" in result.output
    session.expire_all()
    user = session.scalar(select(User).where(User.email == "ops.lead@example.com"))
    assert user is not None and user.role.value == "reviewer" and user.name == "Ops Lead"
    assert user.password_hash.startswith("$argon2id$")
    created = session.scalar(select(AuditEvent).where(AuditEvent.action == AuditAction.create,
                                                      AuditEvent.entity_id == str(user.id)))
    assert created is not None and created.actor_label == "cli"
    assert PASSWORD not in str(created.changes)

    response = client.post("/login", data={"email": "ops.lead@example.com", "password": PASSWORD})
    assert response.status_code == 302


def test_users_create_refuses_a_short_password(runner, session):
    result = runner.invoke(args=[
        "users", "create", "--email", "x@example.com", "--password", "short", "--role", "viewer",
    ])
    assert result.exit_code == 2
    assert "password" in result.output and "at least 12 characters" in result.output
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_users_create_refuses_a_duplicate_and_an_unknown_role(runner, session):
    args = ["users", "create", "--email", "dup@example.com", "--password", PASSWORD]
    assert runner.invoke(args=[*args, "--role", "viewer"]).exit_code == 0
    again = runner.invoke(args=[*args, "--role", "admin"])
    assert again.exit_code == 2 and "already exists" in again.output
    bad_role = runner.invoke(args=[*args[:3], "other@example.com", *args[4:], "--role", "root"])
    assert bad_role.exit_code == 2 and "root" in bad_role.output
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(User)) == 1


def test_audit_verify_on_an_empty_log_prints_ok(runner):
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0
    assert result.output.startswith("OK")


def test_demo_loads_a_varied_audited_inventory(runner, session):
    result = runner.invoke(args=["demo", "--count", "200"])
    assert result.exit_code == 0, result.output
    assert "200" in result.output
    session.expire_all()

    assets = list(session.scalars(select(Asset)))
    assert len(assets) >= 200
    assert len({a.engine for a in assets}) >= 5
    assert len({a.environment for a in assets}) >= 4
    assert len({a.owner for a in assets}) >= 5
    assert len({a.name for a in assets}) == len(assets)
    tag_names = set(session.scalars(select(Tag.name).join(asset_tags)))
    assert len(tag_names) >= 5

    created = set(session.scalars(
        select(AuditEvent.entity_id).where(AuditEvent.action == AuditAction.create,
                                           AuditEvent.entity_type == "asset")
    ))
    assert {str(a.id) for a in assets} <= created

    # systems' databases are linked: replicas, caches, search feeds, one dependency cycle
    kinds = {r.kind.value for r in session.scalars(select(AssetRelationship))}
    assert {"depends_on", "replicates_to", "feeds"} <= kinds
    links = session.scalar(select(func.count()).select_from(AssetRelationship))
    # policy results of every kind, and two exceptions granted (each audited)
    statuses = dict(session.execute(select(PolicyResult.status, func.count())
                                    .group_by(PolicyResult.status)).tuples().all())
    assert set(statuses) == set(PolicyStatus) and statuses[PolicyStatus.excepted] == 2
    verify = runner.invoke(args=["audit", "verify"])
    assert verify.exit_code == 0
    assert verify.output.startswith("OK") and str(len(assets) + 2 * links + 2) in verify.output


def test_demo_assets_show_up_in_the_inventory_page(runner, client, login_as):
    runner.invoke(args=["demo", "--count", "200"])
    login_as("viewer")
    page = client.get("/assets")
    assert page.status_code == 200
    assert "-prod-" in page.get_data(as_text=True)
