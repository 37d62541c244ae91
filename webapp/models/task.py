"""Background task runs (SPEC §13, Task run): one row per run of a job that is not an import or a
change set — a full policy re-evaluation today, scheduled tasks later. The row is what the pages
read for progress, whichever runner (RQ or a thread) does the work."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, JSONType, UUIDPrimaryKey, str_enum, utcnow


class TaskStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"

    @property
    def finished(self) -> bool:
        return self in (TaskStatus.succeeded, TaskStatus.failed)


class TaskRun(UUIDPrimaryKey, Base):
    __tablename__ = "task_runs"

    task: Mapped[str] = mapped_column(String(64), index=True)  # e.g. policy_evaluate
    status: Mapped[TaskStatus] = mapped_column(str_enum(TaskStatus, 16), default=TaskStatus.queued)
    trigger: Mapped[str] = mapped_column(String(300), default="")  # why it runs, for people
    actor_label: Mapped[str] = mapped_column(String(300), default="system")
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]

    @property
    def percent(self) -> int:
        if self.status is TaskStatus.succeeded:
            return 100
        return min(100, self.processed * 100 // self.total) if self.total else 0


class SchedulerLease(Base):
    """Who runs the scheduled tasks (SPEC §13), on SQLite: the one scheduler holding an unexpired
    lease acts, the others wait for it to expire. PostgreSQL uses an advisory lock instead
    (webapp/jobs/scheduler.py); the table exists on both so the schema is one."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # "scheduler"
    holder: Mapped[str] = mapped_column(String(200))  # host:pid:random of the scheduler holding it
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]
