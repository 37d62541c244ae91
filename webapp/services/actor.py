"""Who made a change, independent of the entry point (web, API, CLI, import job)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID | None
    label: str
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    # manual edits lock the fields they touch; discovery does not
    is_manual: bool = True
    # the change set every audit event this actor writes belongs to (a bulk review resolution)
    change_set_id: uuid.UUID | None = None

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(user_id=None, label=label, is_manual=False)

    @classmethod
    def cli(cls, label: str = "cli") -> Actor:
        return cls(user_id=None, label=label)
