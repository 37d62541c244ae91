"""Change sets (SPEC §3, §5): many asset changes made as one, reviewable and undoable as one.

A bulk action is one change set: its selection is frozen at preview time (one
`ChangeSetItem` per asset, with the version the person saw), and every audit event it writes
carries its id. Undoing it is a change set too (`kind` undo, `undo_of`). Imports and loads will
become change sets of their own kinds; their events carry the id the same way, which is all an
undo needs.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, JSONType, UUIDPrimaryKey, str_enum, utcnow
from webapp.models.enums import ChangeSetKind, ChangeSetStatus


class ChangeSet(UUIDPrimaryKey, Base):
    """One change set. The row is what the pages and the API read, whichever runner applies it."""

    __tablename__ = "change_sets"

    # sequential, shown as `change set #N`; given when the change set is applied (a preview
    # nobody applies takes no number)
    number: Mapped[int | None] = mapped_column(Integer, unique=True)
    kind: Mapped[ChangeSetKind] = mapped_column(str_enum(ChangeSetKind), default=ChangeSetKind.bulk)
    status: Mapped[ChangeSetStatus] = mapped_column(
        str_enum(ChangeSetStatus), default=ChangeSetStatus.previewed, index=True
    )
    # who: the audit events it writes act as this person, from wherever the job runs
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    actor_label: Mapped[str] = mapped_column(String(300))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    request_id: Mapped[str | None] = mapped_column(String(64))
    # what: {"ids": [...]} or {"filter": {list filters}} (bulk), {"change_set": id} (undo)
    selection: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # the action: {"set": {field: value}, "add_tags": [...], "remove_tags": [...], "delete": bool}
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # what the preview predicted: its counts and a sample of before -> after
    preview: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # counts: assets selected; changed; already as asked; locked by a pending proposal;
    # refused (changed since the preview or the change set undone, in the trash, gone); failed
    # (the value does not fit the asset)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    locked: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    # the first REPORTED_MAX refused or failed assets: {"asset_id", "name", "reason"}
    reported: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    undo_of: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("change_sets.id"), unique=True)
    undone_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("change_sets.id"), unique=True)
    runner: Mapped[str] = mapped_column(String(20), default="")  # inline, thread or rq
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]

    @staticmethod
    def next_number() -> Any:
        """The next number, as a subquery an UPDATE sets (a unique key: on a clash, retry)."""
        return select(func.coalesce(func.max(ChangeSet.number), 0) + 1).scalar_subquery()

    @property
    def label(self) -> str:
        return f"change set #{self.number}" if self.number is not None else "preview"

    @property
    def percent(self) -> int:
        if self.status is ChangeSetStatus.succeeded:
            return 100
        if not self.total:
            return 0
        return min(100, self.processed * 100 // self.total)


class ChangeSetItem(Base):
    """An asset of a bulk change set's frozen selection, with the version it had at preview:
    an asset whose version moved on by the time the batch reaches it is reported, not
    overwritten."""

    __tablename__ = "change_set_items"

    change_set_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("change_sets.id", ondelete="CASCADE"), primary_key=True
    )
    asset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    version: Mapped[int] = mapped_column(Integer)
