"""Asset facts for the policy tests: a production database that passes every control."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from webapp.models.enums import AssetStatus, Criticality, DataClassification, Engine, Environment
from webapp.policy import AssetFacts

# The day the end-of-life table was compiled; the engine-version cases are written for it.
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def facts(**fields) -> AssetFacts:  # type: ignore[no-untyped-def]
    """A production database that passes every control, changed by `fields`."""
    base = AssetFacts(
        id=uuid.uuid4(),
        name="orders-db",
        engine=Engine.postgresql,
        engine_version="16.4",
        environment=Environment.production,
        status=AssetStatus.active,
        owner="payments-team",
        criticality=Criticality.high,
        data_classification=DataClassification.confidential,
        encrypted_at_rest=True,
        tls_required=True,
        publicly_accessible=False,
        backup_retention_days=14,
        last_backup_at=NOW - timedelta(hours=3),
        deletion_protection=True,
        first_seen_at=NOW - timedelta(days=200),
        last_seen_at=NOW - timedelta(days=1),
        deleted_at=None,
    )
    return replace(base, **fields)
