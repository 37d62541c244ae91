"""Asset and Tag (SPEC §3)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, Timestamps, UUIDPrimaryKey, str_enum
from webapp.models.enums import (
    AssetStatus,
    CloudProvider,
    Criticality,
    DataClassification,
    Engine,
    Environment,
)

asset_tags = Table(
    "asset_tags",
    Base.metadata,
    Column("asset_id", ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    colour: Mapped[str] = mapped_column(String(7), default="#6b7280")


class Asset(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "assets"
    __table_args__ = (
        CheckConstraint("port IS NULL OR (port >= 1 AND port <= 65535)", name="port_range"),
        Index("ix_assets_name_id", "name", "id"),
        Index("ix_assets_updated_at_id", "updated_at", "id"),
        Index(
            "ix_assets_search_text_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
        # the trash's age (retention purge). On SQLite only the trashed rows: its planner cannot
        # tell that `deleted_at IS NULL` is nearly every row, took a full index for the live rows,
        # then sorted them all for a page (150 ms at 100,000 assets instead of 0.5 ms)
        Index("ix_assets_deleted_at", "deleted_at", sqlite_where=text("deleted_at IS NOT NULL")),
        # the few assets in the trash: a graph walk checks each asset it reaches against this
        # small index instead of reading the asset's row (webapp/services/relationships.py)
        Index("ix_assets_trashed_id", "id", postgresql_where=text("deleted_at IS NOT NULL"),
              sqlite_where=text("deleted_at IS NOT NULL")),
        # the list's filter columns (and id) of live rows: on PostgreSQL the capped count and the
        # tag filter read this index alone instead of the table (SPEC §11; see `make bench`)
        Index(
            "ix_assets_live_filters",
            "environment",
            "engine",
            "status",
            "criticality",
            "data_classification",
            postgresql_include=["id"],
            postgresql_where=text("deleted_at IS NULL"),
        ),
        # staleness (SPEC §6): the few live assets a covering scan missed, and the live assets
        # no discovery ever saw, each in list order, so `seen=stale|unverified` reads an index
        Index("ix_assets_missed_name", "name", "id",
              postgresql_where=text("missed_since IS NOT NULL AND deleted_at IS NULL"),
              sqlite_where=text("missed_since IS NOT NULL AND deleted_at IS NULL")),
        Index("ix_assets_unverified_name", "name", "id",
              postgresql_where=text("last_seen_at IS NULL AND first_seen_at IS NULL AND deleted_at IS NULL"),
              sqlite_where=text("last_seen_at IS NULL AND first_seen_at IS NULL AND deleted_at IS NULL")),
    )

    # identity
    name: Mapped[str] = mapped_column(String(200))
    engine: Mapped[Engine] = mapped_column(str_enum(Engine), index=True)
    engine_version: Mapped[str | None] = mapped_column(String(100))
    # location
    host: Mapped[str | None] = mapped_column(String(255))
    port: Mapped[int | None] = mapped_column(Integer)
    database_name: Mapped[str | None] = mapped_column(String(200))
    aliases: Mapped[list[str]] = mapped_column(default=list)
    cloud_provider: Mapped[CloudProvider | None] = mapped_column(str_enum(CloudProvider))
    region: Mapped[str | None] = mapped_column(String(100))
    cloud_resource_id: Mapped[str | None] = mapped_column(String(500), unique=True)
    # ownership and risk
    environment: Mapped[Environment] = mapped_column(
        str_enum(Environment), default=Environment.unknown, index=True
    )
    status: Mapped[AssetStatus] = mapped_column(
        str_enum(AssetStatus), default=AssetStatus.active, index=True
    )
    owner: Mapped[str | None] = mapped_column(String(200), index=True)
    criticality: Mapped[Criticality | None] = mapped_column(str_enum(Criticality), index=True)
    data_classification: Mapped[DataClassification | None] = mapped_column(
        str_enum(DataClassification)
    )
    # posture
    encrypted_at_rest: Mapped[bool | None]
    tls_required: Mapped[bool | None]
    publicly_accessible: Mapped[bool | None]
    backup_retention_days: Mapped[int | None] = mapped_column(Integer)
    last_backup_at: Mapped[datetime | None]
    deletion_protection: Mapped[bool | None]
    # secrets: a MultiFernet token, never the plain text
    connection_string_encrypted: Mapped[str | None] = mapped_column(Text)
    # free-form
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    notes: Mapped[str | None] = mapped_column(Text)
    # discovery
    source: Mapped[str] = mapped_column(String(100), default="manual")
    confidence: Mapped[float | None]
    first_seen_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    # when a run that covered the asset (its host and port, or its cloud account and region)
    # first missed it after its last sighting; cleared by the next sighting (SPEC §6)
    missed_since: Mapped[datetime | None]
    last_import_id: Mapped[uuid.UUID | None]
    locked_fields: Mapped[list[str]] = mapped_column(default=list)
    # which source last set each field ("manual" or an import's source kind), for source
    # precedence (SPEC §6); a field not listed was set by the asset's `source`
    field_sources: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    # bookkeeping
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    updated_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    deleted_at: Mapped[datetime | None] = mapped_column()
    deleted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    merged_into: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("assets.id"))
    # lower-cased text of every searchable field (tags included), kept by the service layer
    search_text: Mapped[str] = mapped_column(Text, default="")

    tags: Mapped[list[Tag]] = relationship(
        secondary=asset_tags, lazy="selectin", order_by=Tag.name
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def has_connection_string(self) -> bool:
        return self.connection_string_encrypted is not None


# the owner filter (a prefix of lower(owner)) of live assets, PostgreSQL only: a range of this
# index instead of reading every row (SPEC §11; at 1,000,000 assets counting a median owner's
# assets scanned the table for 0.9 s). SQLite cannot reflect an expression index.
Index(
    "ix_assets_live_owner",
    func.lower(Asset.owner).label("owner_lower"),
    postgresql_ops={"owner_lower": "text_pattern_ops"},
    postgresql_where=text("deleted_at IS NULL"),
    # a filtered page's collection (name order) and its capped count read the index alone; owner
    # itself too, as the planner wants every column a query names (migration d7e9f1a3b5c7)
    postgresql_include=["owner", "name", "id"],
).ddl_if(dialect="postgresql")

# a searched list's walk in name order (asset_search._probed_page) reads this index alone, never
# the table's wide rows: at 1,000,000 assets a walk of 15,000 rows through the heap took
# 0.3-3.8 s, through this index 5 ms. PostgreSQL only (INCLUDE); SQLite walks ix_assets_name_id.
Index(
    "ix_assets_live_name_walk",
    Asset.name,
    Asset.id,
    postgresql_include=["search_text", "owner"],
    postgresql_where=text("deleted_at IS NULL"),
).ddl_if(dialect="postgresql")
