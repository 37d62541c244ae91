"""Observations (SPEC §3, §6): the last value each source reported for each field of an asset,
whether or not it won.

One row per (asset, field, source): a later report of the same source overwrites it (an
upsert, written in bulk per import batch). `source` is what precedence knows the source by
(`manual`, `nmap`, `csv`, `aws`, a label listed in the settings…), the same key as the asset's
`field_sources`. An import's report names its run; a person's edit names the person.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, JSONType


class Observation(Base):
    __tablename__ = "observations"

    # the primary key is the one index: the Sources tab reads an asset's rows by its prefix.
    # No foreign key (nor on the run, below): checking one on each of the ~10 rows a record
    # writes was half their cost. Assets are only ever removed by `assets.purge`, which
    # removes their observations in the same transaction (docs/decisions.md).
    asset_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    field: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    # the import run that reported it (None: a person's edit; runs are never deleted)
    import_run_id: Mapped[uuid.UUID | None]
    # the person who set it by hand (source `manual`)
    reported_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # the value as reported (JSON; never a secret)
    value: Mapped[Any] = mapped_column(JSONType)
    seen_at: Mapped[datetime]
