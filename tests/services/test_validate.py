"""`flask validate [--repair]` (issue 16): each seeded kind of damage is found and named by its
ids; --repair rewrites only the derived rows (identifiers, policy results), audited."""

from __future__ import annotations

import uuid
from datetime import timedelta

from cryptography.fernet import Fernet
from sqlalchemy import delete, insert, select, text, update

from tests.factories import make_asset
from webapp.models import (
    Asset,
    AssetIdentifier,
    AuditAction,
    AuditEvent,
    PolicyResult,
    Setting,
    Tag,
    asset_tags,
)
from webapp.models.base import utcnow
from webapp.services import validate


def _bypass_constraints(session) -> None:  # type: ignore[no-untyped-def]
    """Damage only a broken tool or a hand edit could do: on PostgreSQL, as a replica the
    session fires neither foreign-key checks nor the audit log's guard (tests only; the app's
    role never could). SQLite enforces neither here."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL session_replication_role = replica"))


def test_validate_passes_on_a_sound_inventory(session, runner) -> None:  # type: ignore[no-untyped-def]
    make_asset(session, connection_string="postgresql://app:pw@db/app", tags=["pci"])
    make_asset(session)
    result = runner.invoke(args=["validate"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 7 checks passed")


def test_validate_names_each_kind_of_damage_and_repair_fixes_the_derived_ones(session, runner) -> None:  # type: ignore[no-untyped-def]
    secret_asset = make_asset(session, connection_string="postgresql://app:pw@db/app")
    tagged = make_asset(session, tags=["pci"])
    looping_a, looping_b = make_asset(session), make_asset(session)
    merged, survivor = make_asset(session), make_asset(session)
    keyless, extra_key = make_asset(session), make_asset(session)
    stale_policy = make_asset(session, owner=None)
    tag_id = session.scalar(select(Tag.id).where(Tag.name == "pci"))
    ghost = uuid.uuid4()
    now = utcnow()

    _bypass_constraints(session)
    tampered = session.scalars(select(AuditEvent).order_by(AuditEvent.id).limit(1)).one()
    session.execute(update(AuditEvent).where(AuditEvent.id == tampered.id).values(message="rewritten"))
    session.execute(update(Asset).where(Asset.id == secret_asset.id).values(
        connection_string_encrypted=Fernet(Fernet.generate_key()).encrypt(b"other key").decode()))
    session.execute(insert(asset_tags).values(asset_id=ghost, tag_id=tag_id))
    session.execute(insert(AssetIdentifier.__table__).values(key="ep:ghost.example.com:5432", asset_id=ghost))
    session.execute(update(Asset).where(Asset.id == looping_a.id).values(merged_into=looping_b.id, deleted_at=now))
    session.execute(update(Asset).where(Asset.id == looping_b.id).values(merged_into=looping_a.id, deleted_at=now))
    session.execute(update(Asset).where(Asset.id == merged.id).values(merged_into=survivor.id, deleted_at=now))
    session.execute(update(Asset).where(Asset.id == survivor.id).values(deleted_at=now - timedelta(hours=1)))
    session.execute(delete(AssetIdentifier).where(AssetIdentifier.asset_id == keyless.id))
    session.execute(insert(AssetIdentifier.__table__).values(key="name:not-its-name", asset_id=extra_key.id))
    session.execute(update(PolicyResult).where(PolicyResult.asset_id == stale_policy.id,
                                               PolicyResult.control_id == "ownership.owner_set")
                    .values(status="pass", reason="tampered"))
    session.add(Setting(key="auto_merge_threshold", value=7))
    session.commit()

    result = runner.invoke(args=["validate"])
    assert result.exit_code == 1, result.output
    out = result.output
    assert f"audit: the audit chain is broken at event {tampered.id}" in out
    assert f"secret: assets {secret_asset.id}: connection_string_encrypted decrypts with none" in out
    assert f"orphan: asset_tags (asset_id={ghost}, tag_id={tag_id})" in out
    assert f"orphan: asset_identifiers (key=ep:ghost.example.com:5432, asset_id={ghost})" in out
    assert f"merge: asset {looping_a.id}: its merged_into chain loops" in out
    assert f"merge: asset {merged.id}: its merged_into chain ends at asset {survivor.id}, which is in the trash" in out
    assert f"identifiers: asset {keyless.id}: identifier keys differ from its fields; missing" in out
    assert f"identifiers: asset {extra_key.id}" in out and "not derived ['name:not-its-name']" in out
    assert f"policy: asset {stale_policy.id}: policy results are not current (ownership.owner_set: stored pass" in out
    assert "settings: setting auto_merge_threshold" in out
    assert f"{tagged.id}" not in out  # a sound asset is not reported
    session.expire_all()
    before = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))

    repaired = runner.invoke(args=["validate", "--repair"])
    assert repaired.exit_code == 1, repaired.output  # what only a person can fix remains
    # policy results: the tampered one, and those of the assets trashed behind the services' back
    assert "repaired: identifiers of 2 asset(s), policy results of 5 asset(s), 1 orphan derived row(s) removed" \
        in repaired.output
    still = [ln for ln in repaired.output.splitlines() if ln.startswith("still: ")]
    kinds = {ln.split(":")[1].strip() for ln in still}
    assert kinds == {"audit", "secret", "orphan", "merge", "settings"}, still
    assert not any("asset_identifiers" in ln for ln in still)
    session.expire_all()
    event = session.scalars(select(AuditEvent).where(AuditEvent.id > before)).one()
    assert event.action is AuditAction.repair and "identifiers of 2 asset(s)" in event.message
    # the audit log itself was not touched: the tampered event is still as it was left
    assert session.get(AuditEvent, tampered.id).message == "rewritten"
    assert session.scalar(select(PolicyResult.status).where(
        PolicyResult.asset_id == stale_policy.id, PolicyResult.control_id == "ownership.owner_set")).value == "fail"


def test_validate_repair_with_nothing_derived_wrong_writes_nothing(session, runner) -> None:  # type: ignore[no-untyped-def]
    make_asset(session)
    before = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    result = runner.invoke(args=["validate", "--repair"])
    assert result.exit_code == 0 and result.output.startswith("OK")
    session.expire_all()
    assert session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) == before


def test_report_lists_a_bounded_number_of_problems_per_kind() -> None:
    report = validate.Report()
    for i in range(validate.LISTED + 5):
        report.add("orphan", f"row {i}")
    assert len(report.problems) == validate.LISTED and report.unlisted == {"orphan": 5}
    assert report.count == validate.LISTED + 5 and not report.ok
