"""The policy registry (webapp/policy/base.py): declarations, frameworks, parameter validation,
the context, `evaluate` across every control, and `AssetFacts` built from an ORM asset and from a
row. No database."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from types import MappingProxyType, SimpleNamespace

import pytest

from tests.unit.policy_helpers import NOW, facts
from webapp.models import Asset
from webapp.models.enums import (
    AssetStatus,
    Criticality,
    DataClassification,
    Engine,
    Environment,
    RelationshipKind,
)
from webapp.policy import (
    COLUMNS,
    CONTROLS,
    FRAMEWORKS,
    AssetFacts,
    Context,
    Control,
    Neighbour,
    ParameterError,
    Result,
    Severity,
    Status,
    controls_for,
    evaluate,
    merged_parameters,
    not_applicable,
    register,
    validate_parameters,
)


def test_frameworks_are_registered_with_titles():
    assert set(FRAMEWORKS) == {"soc2", "gdpr", "cis_controls", "cis_aws", "aws_fsbp"}
    for framework_id, framework in FRAMEWORKS.items():
        assert framework.id == framework_id
        assert framework.title and framework.description
    # /policy lists frameworks, then their controls
    fsbp = [c.id for c in controls_for("aws_fsbp")]
    assert fsbp == [
        "encryption.at_rest",
        "network.not_public",
        "backup.retention",
        "backup.deletion_protection",
    ]
    assert len(controls_for("soc2")) == len(CONTROLS)  # every control maps to SOC 2


def test_every_control_is_declared_completely():
    families = {"encryption", "network", "backup", "ownership", "lifecycle", "graph"}
    assert len(CONTROLS) >= 13
    for control_id, control in CONTROLS.items():
        assert control.id == control_id
        assert control.family in families and control_id.startswith(control.family + ".")
        assert type(control).__module__ == f"webapp.policy.{control.family}"
        assert control.title and control.description
        assert control.severity in Severity
        assert control.references, control_id
        for framework, ids in control.references.items():
            assert framework in FRAMEWORKS
            assert ids and all(isinstance(i, str) and i for i in ids)
        for p in control.parameters:
            assert p.help and p.help.endswith(".") and "\n" not in p.help
            assert p.type is int and p.minimum is not None and p.maximum is not None
            assert p.minimum <= p.default <= p.maximum
            assert p.allowed.startswith(f"{p.minimum}–{p.maximum}")


def test_parameter_out_of_range_names_the_parameter():
    with pytest.raises(ParameterError) as caught:
        Context.build(now=NOW, parameters={"backup.retention": {"min_days_high": -1}})
    assert caught.value.field == "backup.retention.min_days_high"
    assert str(caught.value) == (
        "backup.retention.min_days_high must be between 1 and 3650 days, not -1."
    )
    with pytest.raises(ParameterError, match=r"backup.recent.max_age_hours_critical must be"):
        validate_parameters({"backup.recent": {"max_age_hours_critical": 9000}})
    with pytest.raises(ParameterError, match="lifecycle.engine_supported.fail_days_before_eol"):
        validate_parameters({"lifecycle.engine_supported": {"fail_days_before_eol": -5}})


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"nope.control": {"x": 1}}, "nope.control"),
        ({"backup.retention": {"min_days_forever": 1}}, "backup.retention.min_days_forever"),
        ({"backup.retention": {"min_days_low": "seven"}}, "backup.retention.min_days_low"),
        ({"backup.retention": {"min_days_low": True}}, "backup.retention.min_days_low"),
        ({"backup.retention": {"min_days_low": 2.5}}, "backup.retention.min_days_low"),
    ],
)
def test_parameter_refusals(values, field):
    with pytest.raises(ParameterError) as caught:
        validate_parameters(values)
    assert caught.value.field == field
    assert field in str(caught.value)


def test_parameters_merge_over_defaults():
    assert validate_parameters({"backup.retention": {"min_days_low": "2"}}) == {
        "backup.retention": {"min_days_low": 2}
    }
    merged = merged_parameters({"backup.retention": {"min_days_high": 21}})
    assert set(merged) == set(CONTROLS)
    assert merged["backup.retention"] == {
        "min_days_low": 1,
        "min_days_medium": 3,
        "min_days_high": 21,
        "min_days_critical": 14,
    }
    assert merged["encryption.at_rest"] == {}
    with pytest.raises(TypeError):
        merged["backup.retention"]["min_days_high"] = 1  # type: ignore[index]


def test_context_checks_its_inputs():
    with pytest.raises(ValueError, match="timezone-aware"):
        Context.build(now=datetime(2026, 12, 7))
    with pytest.raises(ParameterError, match="stale_after_days must be between 1 and 3650"):
        Context.build(now=NOW, stale_after_days=0)
    ctx = Context.build(now=NOW, stale_after_days=10)
    assert ctx.stale_cutoff == NOW - timedelta(days=10)
    assert ctx.neighbours is None and ctx.neighbours_of(uuid.uuid4()) == ()


class _Probe(Control):
    id = "encryption.at_rest"  # already taken
    family = "encryption"
    title = "probe"
    description = "probe"
    severity = Severity.low

    def check(self, asset, context):  # type: ignore[no-untyped-def]
        return Result.passed("ok")


def test_register_refuses_bad_declarations():
    before = dict(CONTROLS)
    with pytest.raises(ValueError, match="registered twice"):
        register(_Probe)
    unknown_framework = type(
        "UnknownFramework",
        (_Probe,),
        {"id": "probe.x", "references": MappingProxyType({"iso27001": ("A.8.24",)})},
    )
    with pytest.raises(ValueError, match="unknown framework 'iso27001'"):
        register(unknown_framework)
    bare_string = type(
        "BareString",
        (_Probe,),
        {"id": "probe.y", "references": MappingProxyType({"soc2": "CC6.1"})},
    )
    with pytest.raises(ValueError, match="must be a tuple"):
        register(bare_string)
    assert before == CONTROLS


def test_evaluate_runs_every_applicable_control():
    clean = facts(criticality=Criticality.critical)
    backup = Neighbour(RelationshipKind.backs_up_to, "out", facts(name="vault"))
    ctx = Context.build(now=NOW, neighbours={clean.id: [backup]})
    results = evaluate(clean, ctx)
    assert set(results) == set(CONTROLS)  # a critical production database: all apply
    assert {r.status for r in results.values()} == {Status.pass_}, results
    assert not_applicable(clean) == []

    # a development database with nothing known about its posture: production-only and
    # critical-only controls are left out, posture controls say unknown, none says pass wrongly
    bare = replace(
        clean,
        environment=Environment.development,
        criticality=None,
        data_classification=None,
        encrypted_at_rest=None,
        tls_required=None,
        publicly_accessible=None,
        backup_retention_days=None,
        last_backup_at=None,
        deletion_protection=None,
        engine_version=None,
        owner=None,
        first_seen_at=None,
        last_seen_at=None,
    )
    results = evaluate(bare, ctx)
    assert set(results) == {
        "encryption.at_rest",
        "encryption.tls_required",
        "network.not_public",
        "ownership.owner_set",
        "lifecycle.not_unverified",
        "lifecycle.engine_supported",
    }
    statuses = {cid: r.status for cid, r in results.items()}
    assert statuses == {
        "encryption.at_rest": Status.unknown,
        "encryption.tls_required": Status.unknown,
        "network.not_public": Status.unknown,
        "ownership.owner_set": Status.fail,
        "lifecycle.not_unverified": Status.fail,
        "lifecycle.engine_supported": Status.unknown,
    }
    assert set(not_applicable(bare)) == set(CONTROLS) - set(results)
    assert evaluate(replace(clean, status=AssetStatus.decommissioned), ctx) == {}
    assert evaluate(replace(clean, deleted_at=NOW), ctx) == {}


def test_evaluate_with_a_subset_of_controls():
    only = {"encryption.at_rest": CONTROLS["encryption.at_rest"]}
    results = evaluate(facts(encrypted_at_rest=False), Context.build(now=NOW), only)
    assert results == {"encryption.at_rest": (Status.fail, "storage is not encrypted at rest")}


def test_result_and_status_values_are_what_a_table_stores():
    assert [s.value for s in Status] == ["pass", "fail", "unknown"]
    assert [s.value for s in Severity] == ["low", "medium", "high", "critical"]
    result = Result.unknown("backup retention not known")
    assert result.status == "unknown" and result.reason == "backup retention not known"


# AssetFacts ---------------------------------------------------------------------------------


def test_facts_columns_are_asset_columns():
    assert set(COLUMNS) <= set(Asset.__table__.c.keys())
    assert tuple(AssetFacts.__dataclass_fields__) == COLUMNS


def test_facts_from_an_orm_asset():
    seen = NOW - timedelta(days=2)
    asset = Asset(
        id=uuid.uuid4(),
        name="billing",
        engine=Engine.mysql,
        engine_version="8.4.2",
        environment=Environment.production,
        status=AssetStatus.active,
        owner="dba",
        criticality=Criticality.critical,
        data_classification=DataClassification.restricted,
        encrypted_at_rest=True,
        tls_required=False,
        publicly_accessible=None,
        backup_retention_days=7,
        last_backup_at=seen,
        deletion_protection=True,
        first_seen_at=seen,
        last_seen_at=seen,
    )
    got = AssetFacts.from_asset(asset)
    assert got.id == asset.id and got.engine is Engine.mysql and got.tls_required is False
    assert got.publicly_accessible is None and got.deleted_at is None and got.merged_into is None
    assert got.live and got.production and got.label == "billing (production)"


def test_facts_from_a_row_with_plain_strings():
    asset_id = uuid.uuid4()
    values = {name: None for name in COLUMNS} | {
        "id": asset_id,
        "name": "search",
        "engine": "elasticsearch",
        "environment": "staging",
        "status": "active",
        "criticality": "high",
        "data_classification": "internal",
        "backup_retention_days": 3,
    }
    row = SimpleNamespace(_mapping=values)  # what a SQLAlchemy Row offers
    for got in (AssetFacts.from_row(row), AssetFacts.from_row(values)):
        assert got.id == asset_id
        assert got.engine is Engine.elasticsearch
        assert got.environment is Environment.staging
        assert got.criticality is Criticality.high
        assert got.data_classification is DataClassification.internal
        assert got.owner is None and got.backup_retention_days == 3
    with pytest.raises(AttributeError):
        got.name = "changed"  # type: ignore[misc]
