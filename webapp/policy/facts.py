"""What a control may read of an asset: `AssetFacts`, a small read-only row.

Checks never see an ORM object. The evaluator of 1,000,000 assets reads the columns below with one
Core `select` and builds an `AssetFacts` per row (`from_row`); a service that has an `Asset` in
hand uses `from_asset`. Both give the same facts, so a control cannot depend on lazy loading, a
session or a relationship attribute, and a check costs a few attribute reads.

Neighbours in the dependency graph are facts too (`Neighbour`), handed to the evaluation in bulk
through the `Context` (webapp/policy/base.py), never fetched by a control.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

from webapp.models.enums import (
    AssetStatus,
    Criticality,
    DataClassification,
    Engine,
    Environment,
    RelationshipKind,
)

# The asset columns the controls read, in `AssetFacts` order: what the evaluator selects.
COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "engine",
    "engine_version",
    "environment",
    "status",
    "owner",
    "criticality",
    "data_classification",
    "encrypted_at_rest",
    "tls_required",
    "publicly_accessible",
    "backup_retention_days",
    "last_backup_at",
    "deletion_protection",
    "first_seen_at",
    "last_seen_at",
    "deleted_at",
    "merged_into",
    "missed_since",
)


@dataclass(frozen=True, slots=True)
class AssetFacts:
    """One asset as the controls see it. Posture fields are None when not known (SPEC §3)."""

    id: uuid.UUID
    name: str
    engine: Engine
    engine_version: str | None
    environment: Environment
    status: AssetStatus
    owner: str | None
    criticality: Criticality | None
    data_classification: DataClassification | None
    encrypted_at_rest: bool | None
    tls_required: bool | None
    publicly_accessible: bool | None
    backup_retention_days: int | None
    last_backup_at: datetime | None
    deletion_protection: bool | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    deleted_at: datetime | None
    merged_into: uuid.UUID | None = None
    # when a scan that covered the asset first missed it after its last sighting (SPEC §6)
    missed_since: datetime | None = None

    @classmethod
    def from_asset(cls, asset: Any) -> AssetFacts:
        """From an ORM `Asset` (or anything with the same attributes)."""
        return cls(*(getattr(asset, name) for name in COLUMNS))

    @classmethod
    def from_typed_row(cls, row: Sequence[Any]) -> AssetFacts:
        """From a row of the model's own columns in COLUMNS order (`select(*(Asset.<c> for c in
        COLUMNS))`): enum columns arrive as enums and are never null, so the row is the facts
        as they are, with no conversion (the fast path of a full evaluation)."""
        return cls(*row)

    @classmethod
    def from_row(cls, row: Any) -> AssetFacts:
        """From a Core row of `select(*(assets.c[name] for name in COLUMNS))`, or a mapping with
        those keys. Enum columns arrive as enums from the model's column types; plain strings (a
        raw SQL row, a JSON fixture) are converted here."""
        values = row._mapping if hasattr(row, "_mapping") else row
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> AssetFacts:
        get = values.get
        criticality = get("criticality")
        classification = get("data_classification")
        return cls(
            id=values["id"],
            name=values["name"],
            engine=Engine(values["engine"]),
            engine_version=get("engine_version"),
            environment=Environment(get("environment") or Environment.unknown),
            status=AssetStatus(get("status") or AssetStatus.unknown),
            owner=get("owner"),
            criticality=None if criticality is None else Criticality(criticality),
            data_classification=(
                None if classification is None else DataClassification(classification)
            ),
            encrypted_at_rest=get("encrypted_at_rest"),
            tls_required=get("tls_required"),
            publicly_accessible=get("publicly_accessible"),
            backup_retention_days=get("backup_retention_days"),
            last_backup_at=get("last_backup_at"),
            deletion_protection=get("deletion_protection"),
            first_seen_at=get("first_seen_at"),
            last_seen_at=get("last_seen_at"),
            deleted_at=get("deleted_at"),
            merged_into=get("merged_into"),
            missed_since=get("missed_since"),
        )

    # Derived facts the controls share.
    @property
    def live(self) -> bool:
        """Neither in the trash nor merged into another asset."""
        return self.deleted_at is None and self.merged_into is None

    @property
    def production(self) -> bool:
        return self.environment is Environment.production

    @property
    def label(self) -> str:
        """How a reason names this asset: its name and environment."""
        return f"{self.name} ({self.environment.value})"


Direction = Literal["out", "in"]


class Neighbour(NamedTuple):
    """One relationship of an asset: `out` when the asset is the source (`A depends_on B` is
    `out` for A, `in` for B), and the asset at the other end."""

    kind: RelationshipKind
    direction: Direction
    asset: AssetFacts
