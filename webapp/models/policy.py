"""Policy results, exceptions and the daily posture snapshot (SPEC §12).

`policy_results` holds one row per (asset, control that applies to it): what the control said,
why, and when. It is kept current in the same transaction as every change to an asset or a
relationship (`services/policy_results.py`), so the policy filters and counts are index lookups
at any size. A failure covered by a live exception is stored as `excepted`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, JSONType, UUIDPrimaryKey, str_enum, utcnow
from webapp.models.enums import PolicyStatus

CONTROL_ID_LENGTH = 64


class PolicyResult(Base):
    __tablename__ = "policy_results"
    __table_args__ = (
        # "failing control X" and each control's counts by status, both index-only scans
        Index("ix_policy_results_control_status", "control_id", "status", "asset_id"),
        # "failing any control": the assets with a result of that status
        Index("ix_policy_results_status_asset", "status", "asset_id"),
    )

    asset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    control_id: Mapped[str] = mapped_column(String(CONTROL_ID_LENGTH), primary_key=True)
    status: Mapped[PolicyStatus] = mapped_column(str_enum(PolicyStatus, 16))
    reason: Mapped[str] = mapped_column(Text, default="")
    evaluated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PolicyException(UUIDPrimaryKey, Base):
    """A reviewer's or admin's decision that one asset may fail one control until `expires_at`."""

    __tablename__ = "policy_exceptions"
    __table_args__ = (Index("ix_policy_exceptions_asset_control", "asset_id", "control_id"),)

    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    control_id: Mapped[str] = mapped_column(String(CONTROL_ID_LENGTH))
    reason: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    granted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    granted_by_label: Mapped[str] = mapped_column(String(300), default="")
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the expiry was acted on: results re-evaluated (and, later, the notification sent)
    expiry_handled_at: Mapped[datetime | None]


class PolicySnapshot(Base):
    """One day's posture, written by the policy job: for the dashboard's 90-day trend."""

    __tablename__ = "policy_snapshots"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    assets: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # status -> results
    # framework id -> {"pass": n, "fail": n, "unknown": n, "excepted": n}
    frameworks: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    taken_at: Mapped[datetime] = mapped_column(default=utcnow)
