"""Relationships between assets (SPEC §3 `asset_relationships`).

A relationship is a directed link `source → target` of one kind. For walking the dependency
graph every kind is also read as "dependent → provider" (`dependent_id`, `provider_id`, kept by
the database as generated columns): the provider is the asset whose outage reaches the
dependent.

| kind            | reads as                                   | dependent | provider |
|-----------------|--------------------------------------------|-----------|----------|
| `depends_on`    | source needs target to work                | source    | target   |
| `backs_up_to`   | source keeps its backups on target         | source    | target   |
| `member_of`     | source is an instance of cluster target    | source    | target   |
| `replicates_to` | target is a replica of source              | target    | source   |
| `feeds`         | source sends data to target                | target    | source   |
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Computed, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UUIDPrimaryKey, str_enum, utcnow
from webapp.models.enums import RelationshipKind

# kinds whose provider is the target (the others: the source)
_PROVIDER_IS_SOURCE = "'replicates_to', 'feeds'"
DEPENDENT_SQL = f"CASE WHEN kind IN ({_PROVIDER_IS_SOURCE}) THEN target_id ELSE source_id END"
PROVIDER_SQL = f"CASE WHEN kind IN ({_PROVIDER_IS_SOURCE}) THEN source_id ELSE target_id END"


class AssetRelationship(UUIDPrimaryKey, Base):
    __tablename__ = "asset_relationships"
    __table_args__ = (
        UniqueConstraint("source_id", "target_id", "kind", name="uq_asset_relationships_link"),
        CheckConstraint("source_id <> target_id", name="no_self_link"),
        # the graph walks: downstream (who is hit when this goes down) and upstream
        Index("ix_asset_relationships_provider", "provider_id", "dependent_id"),
        Index("ix_asset_relationships_dependent", "dependent_id", "provider_id"),
        # the list, newest first (keyset on created_at, id)
        Index("ix_asset_relationships_created_at_id", "created_at", "id"),
    )

    source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    target_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[RelationshipKind] = mapped_column(str_enum(RelationshipKind))
    description: Mapped[str | None] = mapped_column(String(500))
    dependent_id: Mapped[uuid.UUID] = mapped_column(Computed(DEPENDENT_SQL, persisted=True))
    provider_id: Mapped[uuid.UUID] = mapped_column(Computed(PROVIDER_SQL, persisted=True))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    # the import whose file stated it (None: drawn by a person)
    import_run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("import_runs.id", ondelete="SET NULL")
    )
