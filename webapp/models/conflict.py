"""Review items (SPEC §3 "Conflict"): what matching could not decide alone.

- `possible_duplicate`: an incoming record (or, with `duplicate_id`, another existing asset)
  that may be the same database as `candidate_id`, with the confidence and its reasons;
- `field_conflict`: a record matched `candidate_id`, but some of its values differ from fields
  that are locked or were last set by a higher-precedence source: `fields` holds
  `{field: [current, incoming]}` and nothing was overwritten.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, JSONType, UUIDPrimaryKey, str_enum, utcnow
from webapp.models.enums import ConflictKind, ConflictStatus


class Conflict(UUIDPrimaryKey, Base):
    __tablename__ = "conflicts"
    __table_args__ = (
        Index("ix_conflicts_status_created_at", "status", "created_at"),
        # one open item per question: a re-import of the same record finds it instead of
        # asking again (see services/pipeline)
        Index("ix_conflicts_candidate_fingerprint", "candidate_id", "fingerprint"),
    )

    import_run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("import_runs.id", ondelete="SET NULL"), index=True
    )
    record_key: Mapped[str | None] = mapped_column(String(600))
    kind: Mapped[ConflictKind] = mapped_column(str_enum(ConflictKind))
    # the normalised incoming record (asset fields by service name; never a secret)
    incoming: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    candidate_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE")
    )
    # a possible duplicate between two existing assets: the other one
    duplicate_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), index=True
    )
    confidence: Mapped[float] = mapped_column(default=0.0)
    reasons: Mapped[list[str]] = mapped_column(JSONType, default=list)
    fields: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # what was asked: the same question asked again (same candidate, same incoming values)
    # finds this item instead of opening another
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[ConflictStatus] = mapped_column(
        str_enum(ConflictStatus), default=ConflictStatus.open
    )
    resolution: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # the asset the item ended in (the merged survivor, or the asset created from it)
    result_asset_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("assets.id", ondelete="SET NULL")
    )
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def is_open(self) -> bool:
        return self.status == ConflictStatus.open

