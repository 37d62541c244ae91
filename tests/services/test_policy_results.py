"""Policy results stay current (SPEC §12): written in the same transaction as every change to an
asset or a relationship, recomputed when a parameter changes or time passes, and turned to
`excepted` by an exception until it expires."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.factories import ACTOR, make_asset
from webapp import policy
from webapp.models import (
    Asset,
    AuditAction,
    AuditEvent,
    OutboxEvent,
    PolicyException,
    PolicyResult,
    PolicySnapshot,
    PolicyStatus,
)
from webapp.models.base import utcnow
from webapp.services import assets as asset_service
from webapp.services import policy_exceptions, policy_results, policy_runs, relationships, settings
from webapp.services.errors import ValidationFailed

POSTURE = {"encrypted_at_rest": True, "tls_required": True, "publicly_accessible": False,
           "backup_retention_days": 30, "deletion_protection": True, "criticality": "high",
           "data_classification": "confidential"}


def results(session, asset_id) -> dict[str, str]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return {r.control_id: r.status.value for r in session.scalars(
        select(PolicyResult).where(PolicyResult.asset_id == asset_id))}


def reason(session, asset_id, control_id) -> str:  # type: ignore[no-untyped-def]
    return session.scalar(select(PolicyResult.reason).where(
        PolicyResult.asset_id == asset_id, PolicyResult.control_id == control_id))


def test_a_new_asset_has_a_result_for_every_control_that_applies(session):
    asset = make_asset(session, **POSTURE)
    stored = results(session, asset.id)
    expected = policy.evaluate(policy.AssetFacts.from_asset(asset),
                               policy_results.context(session, neighbours={}))
    assert stored == {cid: r.status.value for cid, r in expected.items()}
    assert stored["encryption.at_rest"] == "pass"
    # posture nobody knows is unknown, never pass
    bare = make_asset(session, environment="production")
    assert results(session, bare.id)["encryption.at_rest"] == "unknown"
    assert "not known" in reason(session, bare.id, "encryption.at_rest")


def test_an_edit_updates_the_results_in_the_same_transaction(session):
    asset = make_asset(session, **POSTURE)
    assert results(session, asset.id)["encryption.at_rest"] == "pass"
    asset_service.update(session, ACTOR, asset.id, {"encrypted_at_rest": False},
                         expected_version=asset.version)
    assert results(session, asset.id)["encryption.at_rest"] == "fail"


def test_trash_and_restore_and_purge(session):
    asset = make_asset(session, **POSTURE)
    asset_service.delete(session, ACTOR, asset.id)
    assert results(session, asset.id) == {}  # out of scope in the trash
    asset_service.restore(session, ACTOR, asset.id)
    assert results(session, asset.id)["encryption.at_rest"] == "pass"
    asset_service.delete(session, ACTOR, asset.id)
    asset_service.purge(session, ACTOR, asset.id)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(PolicyResult)) == 0


def test_a_relationship_change_re_evaluates_both_ends_and_their_neighbours(session):
    app_db = make_asset(session, name="orders-prod", environment="production", **{
        k: v for k, v in POSTURE.items() if k != "criticality"}, criticality="critical")
    test_db = make_asset(session, name="orders-test", environment="test")
    assert results(session, app_db.id)["graph.prod_depends_on_prod"] == "pass"
    assert results(session, app_db.id)["graph.critical_has_copy"] == "fail"
    link = relationships.create(session, ACTOR, source_id=app_db.id, target_id=test_db.id,
                                kind="depends_on")
    assert results(session, app_db.id)["graph.prod_depends_on_prod"] == "fail"
    assert "orders-test" in reason(session, app_db.id, "graph.prod_depends_on_prod")
    # the neighbour's own change reaches the dependent: the test database becomes production
    asset_service.update(session, ACTOR, test_db.id, {"environment": "production"},
                         expected_version=test_db.version)
    assert results(session, app_db.id)["graph.prod_depends_on_prod"] == "pass"
    relationships.delete(session, ACTOR, link.id)
    replica = make_asset(session, name="orders-replica")
    relationships.create(session, ACTOR, source_id=app_db.id, target_id=replica.id,
                         kind="replicates_to")
    assert results(session, app_db.id)["graph.critical_has_copy"] == "pass"


def test_a_parameter_change_is_audited_and_re_evaluation_applies_it(session):
    asset = make_asset(session, **{**POSTURE, "backup_retention_days": 10})
    assert results(session, asset.id)["backup.retention"] == "pass"  # 7 days for high
    settings.update(session, ACTOR, {"policy_parameters": {"backup.retention": {"min_days_high": 14}}})
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event.action == AuditAction.settings_change and "policy_parameters" in event.changes
    policy_results.evaluate_all(session, batch_size=2)
    assert results(session, asset.id)["backup.retention"] == "fail"
    assert "14" in reason(session, asset.id, "backup.retention")


@pytest.mark.parametrize(("value", "field"), [
    ({"backup.retention": {"min_days_high": -1}}, "backup.retention.min_days_high"),
    ({"backup.retention": {"nonsense": 3}}, "backup.retention.nonsense"),
    ({"no.such.control": {}}, "no.such.control"),
    ("seven", "policy_parameters"),
])
def test_a_bad_parameter_is_refused_by_name(session, value, field):
    with pytest.raises(ValidationFailed) as refused:
        settings.update(session, ACTOR, {"policy_parameters": value})
    assert field in refused.value.errors


def test_evaluate_all_reports_progress_and_drops_rows_of_assets_out_of_scope(session):
    for _ in range(5):
        make_asset(session, **POSTURE)
    stored = session.scalar(select(func.count()).select_from(PolicyResult))
    session.execute(PolicyResult.__table__.delete())
    session.commit()
    seen: list[tuple[int, int]] = []
    written = policy_results.evaluate_all(session, batch_size=2, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(2, 5), (4, 5), (5, 5)]
    assert written == stored == session.scalar(select(func.count()).select_from(PolicyResult))
    # nothing changed since: nothing is rewritten
    assert policy_results.evaluate_all(session) == 0


def test_time_passing_is_seen_by_the_job_not_before(session):
    asset = make_asset(session, **{**POSTURE, "criticality": "critical"})
    asset_service.update(session, ACTOR, asset.id, {"last_backup_at": utcnow() - timedelta(hours=2)},
                         expected_version=asset.version)
    assert results(session, asset.id)["backup.recent"] == "pass"
    policy_results.evaluate_all(session, now=utcnow() + timedelta(days=2))
    assert results(session, asset.id)["backup.recent"] == "fail"


# --- exceptions ---------------------------------------------------------------------------------

def test_an_exception_turns_a_failure_into_excepted_until_it_expires(session):
    asset = make_asset(session, **{**POSTURE, "encrypted_at_rest": False})
    assert results(session, asset.id)["encryption.at_rest"] == "fail"
    expires = utcnow() + timedelta(days=30)
    exception = policy_exceptions.grant(session, ACTOR, asset.id, "encryption.at_rest",
                                        reason="legacy engine, migration planned", expires_at=expires)
    assert results(session, asset.id)["encryption.at_rest"] == "excepted"
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event.action == AuditAction.exception_grant and event.entity_id == str(asset.id)
    assert set(policy_exceptions.active(session, asset.id)) == {"encryption.at_rest"}
    # an edit keeps it excepted (the exception is read at every evaluation)
    asset_service.update(session, ACTOR, asset.id, {"owner": "someone@example.com"}, expected_version=None)
    assert results(session, asset.id)["encryption.at_rest"] == "excepted"
    # once it has expired, the job fails it again, once
    later = expires + timedelta(minutes=1)
    expired = policy_exceptions.expire(session, now=later)
    assert [e["exception_id"] for e in expired] == [str(exception.id)]
    assert results(session, asset.id)["encryption.at_rest"] == "fail"
    assert policy_exceptions.expire(session, now=later) == []


def events(session, kind):  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(OutboxEvent).where(OutboxEvent.kind == kind)
                                .order_by(OutboxEvent.created_at)))


def test_an_exception_is_announced_once_a_week_before_and_once_when_it_ends(session):
    asset = make_asset(session, name="billing-db", **{**POSTURE, "encrypted_at_rest": False})
    expires = utcnow() + timedelta(days=30)
    exception = policy_exceptions.grant(session, ACTOR, asset.id, "encryption.at_rest",
                                        reason="migration planned", expires_at=expires)
    assert policy_exceptions.expire(session) == [] and events(session, "exception_expiring") == []
    # within a week of the end: one warning, however often the job runs
    for days_left in (6, 5):
        policy_exceptions.expire(session, now=expires - timedelta(days=days_left))
    [warning] = events(session, "exception_expiring")
    assert "billing-db" in warning.subject and "ends on" in warning.subject
    assert warning.min_role.value == "reviewer" and warning.link == f"/assets/{asset.id}/policy"
    # at the end: one more, saying it ended
    for minutes in (1, 2):
        policy_exceptions.expire(session, now=expires + timedelta(minutes=minutes))
    warning, ended = events(session, "exception_expiring")
    assert "ended on" in ended.subject and ended.payload["exception_id"] == str(exception.id)
    assert ended.payload["state"] == "expired"


def test_a_new_high_failure_is_announced_with_its_reason(session):
    asset = make_asset(session, name="ledger-primary", **POSTURE)
    assert events(session, "policy_failing") == []  # a first evaluation is not news
    asset_service.update(session, ACTOR, asset.id, {"encrypted_at_rest": False}, expected_version=None)
    [event] = events(session, "policy_failing")
    control = policy.CONTROLS["encryption.at_rest"]
    assert control.severity.value in {"high", "critical"}
    assert event.subject == f"ledger-primary now fails “{control.title}”"
    assert event.severity.value == control.severity.value
    assert reason(session, asset.id, "encryption.at_rest") in event.body
    assert event.payload == {"asset_id": str(asset.id), "asset": "ledger-primary",
                             "controls": ["encryption.at_rest"]}
    # still failing after another edit: no second event
    asset_service.update(session, ACTOR, asset.id, {"owner": "dba@example.com"}, expected_version=None)
    assert len(events(session, "policy_failing")) == 1


def test_a_failure_rolled_back_leaves_no_event(session):
    asset = make_asset(session, **POSTURE)
    row = session.get(Asset, asset.id)
    row.encrypted_at_rest = False
    session.flush()
    policy_results.evaluate_ids(session, [asset.id])
    assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 1
    session.rollback()
    assert events(session, "policy_failing") == []


def test_many_new_failures_in_one_batch_make_one_event(session):
    made = [make_asset(session, name=f"fleet-{n}", **POSTURE)
            for n in range(policy_results.NEWS_PER_BATCH + 1)]
    for asset in made:
        session.get(Asset, asset.id).encrypted_at_rest = False
    session.commit()
    [event] = events(session, "policy_failing")
    assert event.subject.startswith(f"{len(made)} assets newly fail")
    assert event.link == "/assets?policy_failing=true"


@pytest.mark.parametrize(("control", "reason_text", "days", "field"), [
    ("encryption.at_rest", "ok", -1, "expires_at"),
    ("encryption.at_rest", "ok", 400, "expires_at"),
    ("encryption.at_rest", "  ", 10, "reason"),
    ("no.such", "ok", 10, "control"),
    ("backup.deletion_protection", "ok", 10, "control"),  # production only: this one is staging
])
def test_a_bad_exception_is_refused_by_name(session, control, reason_text, days, field):
    asset = make_asset(session, environment="staging")
    with pytest.raises(ValidationFailed) as refused:
        policy_exceptions.grant(session, ACTOR, asset.id, control, reason=reason_text,
                                expires_at=utcnow() + timedelta(days=days))
    assert field in refused.value.errors
    session.rollback()
    assert session.scalar(select(func.count()).select_from(PolicyException)) == 0


def test_a_commit_that_changes_no_asset_evaluates_nothing(session, db):
    make_asset(session, **POSTURE)
    statements: list[str] = []
    from sqlalchemy import event

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert not [s for s in statements if "policy_results" in s]
    assert PolicyStatus.excepted.value == "excepted"


def test_the_command_evaluates_what_is_missing_or_everything(session, runner):
    asset = make_asset(session, **POSTURE)
    session.execute(PolicyResult.__table__.delete())
    session.commit()
    result = runner.invoke(args=["policy", "evaluate"])
    assert result.exit_code == 0, result.output
    assert "for assets that had none" in result.output
    assert results(session, asset.id)["encryption.at_rest"] == "pass"
    result = runner.invoke(args=["policy", "evaluate", "--all"])
    assert result.exit_code == 0 and "Re-evaluated every asset" in result.output, result.output
    run = policy_runs.latest(session)
    assert run.status.value == "succeeded" and run.processed == run.total == 1
    snapshot = session.scalars(select(PolicySnapshot)).one()
    assert snapshot.assets == 1 and snapshot.counts["pass"] > 0 and "soc2" in snapshot.frameworks


# --- set-wise writers: an import batch, a bulk action, a merge ---------------------------------

def test_an_import_batch_writes_the_results_of_what_it_created_and_changed(session):
    import json

    from webapp.services import imports

    existing = make_asset(session, name="ledger-db", host="ledger.db.internal", port=5432,
                          **{**POSTURE, "encrypted_at_rest": None})
    assert results(session, existing.id)["encryption.at_rest"] == "unknown"
    data = json.dumps([
        {"name": "ledger-db", "engine": "postgresql", "host": "ledger.db.internal", "port": 5432,
         "encrypted_at_rest": False},
        {"name": "fresh-db", "engine": "mysql", "host": "fresh.db.internal", "port": 3306,
         "environment": "production", "encrypted_at_rest": True},
    ]).encode()
    run = imports.create_run(session, ACTOR, data=data, filename="scan.json", source="inventory")
    run = imports.execute(session, run.id, runner="inline", batch_size=1)
    assert run.status.value == "succeeded", run.error
    assert results(session, existing.id)["encryption.at_rest"] == "fail"
    fresh = session.scalar(select(PolicyResult.asset_id).join(
        Asset, Asset.id == PolicyResult.asset_id).where(Asset.name == "fresh-db").limit(1))
    assert results(session, fresh)["encryption.at_rest"] == "pass"
    # seen by discovery now: verified
    assert results(session, fresh)["lifecycle.not_unverified"] == "pass"


def test_a_bulk_action_re_evaluates_each_batch(session):
    from webapp.services import change_sets
    from webapp.services.bulk_actions import BulkAction, Selection

    # staging high -> production high would wait for a second person (four-eyes): not this test's
    settings.update(session, ACTOR, {"approval_required": {"enabled": False}})
    made = [make_asset(session, environment="staging", **{k: v for k, v in POSTURE.items()
                                                          if k != "deletion_protection"})
            for _ in range(3)]
    assert "backup.deletion_protection" not in results(session, made[0].id)  # staging
    cs = change_sets.create(session, ACTOR, Selection.of_ids([a.id for a in made]),
                            BulkAction.parse({"environment": "production"}))
    cs = change_sets.apply(session, ACTOR, cs.id)
    change_sets.execute(session, cs.id, batch_size=2)
    for asset in made:
        assert results(session, asset.id)["backup.deletion_protection"] == "unknown"
    tags_only = change_sets.create(session, ACTOR, Selection.of_ids([made[0].id]),
                                   BulkAction.parse(add_tags=["pci"]))
    before = session.scalar(select(func.max(PolicyResult.evaluated_at)))
    change_sets.execute(session, change_sets.apply(session, ACTOR, tags_only.id).id)
    session.expire_all()
    assert session.scalar(select(func.max(PolicyResult.evaluated_at))) == before  # a tag changes nothing


def test_a_merge_drops_the_merged_asset_and_re_evaluates_the_survivor(session):
    from webapp.services import conflicts

    survivor = make_asset(session, name="orders-a", **{**POSTURE, "encrypted_at_rest": None})
    other = make_asset(session, name="orders-b", **POSTURE)
    conflicts.merge_assets(session, ACTOR, survivor_id=survivor.id, other_id=other.id,
                           fields={"encrypted_at_rest": "incoming"})
    assert results(session, other.id) == {}
    assert results(session, survivor.id)["encryption.at_rest"] == "pass"
