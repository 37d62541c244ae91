"""Discovery imports (SPEC §3, §6): stored files, runs, per-record outcomes, and the keys
matching looks assets up by."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, BigIntPK, JSONType, UUIDPrimaryKey, str_enum, utcnow
from webapp.models.enums import ImportStatus, RecordOutcome


class ImportFile(UUIDPrimaryKey, Base):
    """An uploaded file, kept in the database (in chunks) so every worker can read it."""

    __tablename__ = "import_files"

    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportFileChunk(Base):
    __tablename__ = "import_file_chunks"

    file_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("import_files.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ImportRun(UUIDPrimaryKey, Base):
    """One import of one file. The row is the source of truth the UI and API read."""

    __tablename__ = "import_runs"

    number: Mapped[int] = mapped_column(Integer, unique=True)
    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("import_files.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer, default=0)
    format: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(100))
    uploaded_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    uploaded_by_label: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[ImportStatus] = mapped_column(
        str_enum(ImportStatus), default=ImportStatus.queued, index=True
    )
    dry_run: Mapped[bool] = mapped_column(default=False)
    runner: Mapped[str] = mapped_column(String(20), default="")  # rq, thread or inline
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    # relationships the file stated that this run created (SPEC §6: replicas, cluster members)
    linked: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    row_errors: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    # records written with a value left out ("criticality 'bogus' not recognised"): how many,
    # and the first ROW_ERRORS_MAX as {"row", "key", "message"}
    warned: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    row_warnings: Mapped[list[Any]] = mapped_column(JSONType, default=list, server_default="[]")
    warnings: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    # what the file covered (webapp/discovery/coverage.py: scan hosts and TCP ports, cloud
    # scopes); None when its format says nothing about what it left out. Staleness reads it.
    coverage: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # how many assets this run covered but did not see (marked missed when it finished)
    missed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    retry_of: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("import_runs.id"))
    # an identical re-import that reused this earlier run's record outcomes (imports._replay)
    replay_of: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("import_runs.id"), index=True)
    # the inventory's state when this run finished (see imports.watermark)
    watermark: Mapped[str | None] = mapped_column(String(100))
    # a real run is a change set (kind `import`): every audit event it writes carries this id,
    # which is what `Undo this import` reverses. None for dry runs and runs made before it.
    change_set_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("change_sets.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]

    @property
    def label(self) -> str:
        return f"import #{self.number}"

    @property
    def percent(self) -> int:
        if self.status in (ImportStatus.succeeded,):
            return 100
        if not self.total:
            return 0
        return min(100, self.processed * 100 // self.total)


class ImportRecord(Base):
    """The outcome of one input record of a run. For real (not dry) runs, a record with an
    asset is that asset's sighting: which run saw it, under which key, when."""

    __tablename__ = "import_records"
    __table_args__ = (
        UniqueConstraint("run_id", "seq", name="uq_import_records_run_id_seq"),
        Index("ix_import_records_asset_id", "asset_id"),
        Index("ix_import_records_fingerprint", "fingerprint"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("import_runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)  # position in the file, 1-based
    key: Mapped[str] = mapped_column(String(600))
    outcome: Mapped[RecordOutcome] = mapped_column(str_enum(RecordOutcome))
    asset_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("assets.id", ondelete="SET NULL")
    )
    conflict_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conflicts.id", ondelete="SET NULL"), index=True
    )
    asset_version: Mapped[int | None] = mapped_column(Integer)  # the asset's version after it
    message: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # hash of the record's normalised fields: an identical record seen before is the same asset
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class AssetIdentifier(Base):
    """The strong keys an asset is found by (`cloud:<id>`, `ep:<host>:<port>`), kept by the
    service layer whenever host, port, aliases or the cloud id change."""

    __tablename__ = "asset_identifiers"
    __table_args__ = (
        Index("ix_asset_identifiers_asset_id", "asset_id"),
        # prefix searches (`ep:10.0.0.5:%`, `cloud:arn:aws:rds:eu-west-1:1234:db:%`): which
        # assets a finished scan covered (services/coverage.py), whatever the collation
        Index("ix_asset_identifiers_key_prefix", "key", postgresql_ops={"key": "text_pattern_ops"}),
    )

    key: Mapped[str] = mapped_column(String(600), primary_key=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )


class HostBridge(Base):
    """An IP address and a DNS name learnt to be the same server (from nmap host names and
    cloud IP lists), so `db1.example.com:5432` and `10.0.0.5:5432` are one endpoint."""

    __tablename__ = "host_bridges"
    __table_args__ = (Index("ix_host_bridges_hostname", "hostname"),)

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255), primary_key=True)
    import_run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("import_runs.id", ondelete="SET NULL")
    )
    learnt_at: Mapped[datetime] = mapped_column(default=utcnow)
