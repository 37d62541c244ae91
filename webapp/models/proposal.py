"""Proposed changes (SPEC §5 Review, "four-eyes approval"): a manual edit to an asset that the
`approval_required` setting covers is kept here instead of being applied. It is a diff against
the asset version it was made on (`base_version`): `{field: [value at that version, proposed
value]}` in JSON form. A second person approves it (the edit is applied then, as one change,
if the asset is still at `base_version`) or rejects it with a reason.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, JSONType, UUIDPrimaryKey, str_enum, utcnow


class ProposalStatus(enum.StrEnum):
    open = "open"
    approved = "approved"
    rejected = "rejected"


class Proposal(UUIDPrimaryKey, Base):
    __tablename__ = "proposals"
    __table_args__ = (
        # the queue (open first, newest first) and an asset's waiting changes
        Index("ix_proposals_status_created_at", "status", "created_at"),
        Index("ix_proposals_asset_id_status", "asset_id", "status"),
    )

    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    base_version: Mapped[int] = mapped_column(Integer)
    # {field: [value at base_version, proposed value]}, JSON values (never a secret)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # the bulk change set it came from (its other assets may have been changed directly)
    change_set_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("change_sets.id", ondelete="SET NULL"))
    status: Mapped[ProposalStatus] = mapped_column(
        str_enum(ProposalStatus, 16), default=ProposalStatus.open)
    proposed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    proposed_by_label: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    decided_by_label: Mapped[str | None] = mapped_column(String(300))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)  # why it was rejected
    # the asset's version the approval produced
    applied_version: Mapped[int | None] = mapped_column(Integer)

    @property
    def is_open(self) -> bool:
        return self.status == ProposalStatus.open
