"""The asset's Sources tab (SPEC §5): per field, the current value, which source set it and
when, and what every other source last reported, marked where it differs.

Two statements whatever the asset: its observations (with their runs' numbers and the people
who set values by hand, joined) and the precedence settings.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import Asset, ImportRun, Observation, User
from webapp.models.asset_fields import CATALOGUE
from webapp.services import assets, identifiers, matching, observations
from webapp.services import settings as settings_service

# fields no source "sets": every source's values are added together
ADDITIVE = frozenset({"tags", "aliases", "metadata"})


@dataclass
class Report:
    """One source's last value for a field."""

    source: str
    value: Any
    seen_at: datetime
    run_id: uuid.UUID | None = None
    run_number: int | None = None
    person: str | None = None  # who set it by hand (source `manual`)
    differs: bool = False  # from the current value, after normalisation


@dataclass
class FieldSources:
    name: str
    label: str
    value: Any  # the current value (JSON)
    source: str | None  # the source that set it (None: additive, every source's values)
    setter: Report | None  # that source's own report, when one is kept
    others: list[Report] = field(default_factory=list)

    @property
    def disputed(self) -> bool:
        return any(r.differs for r in self.others)


@dataclass
class AssetSources:
    fields: list[FieldSources]
    sources: list[str]  # every source that reported something

    @property
    def empty(self) -> bool:
        return not self.fields

    @property
    def discovered(self) -> bool:
        """Whether any source besides people reported on the asset."""
        return any(s != "manual" for s in self.sources)


def sources_of(session: Session, asset: Asset) -> AssetSources:
    """What the Sources tab shows for `asset` (see the module's docstring)."""
    rows = session.execute(
        select(Observation, ImportRun.number, User.email)
        .outerjoin(ImportRun, ImportRun.id == Observation.import_run_id)
        .outerjoin(User, User.id == Observation.reported_by)
        .where(Observation.asset_id == asset.id)
    ).all()
    if not rows:
        return AssetSources([], [])
    values = settings_service.all_settings(session)
    precedence = matching.Precedence(list(values["source_precedence"]),
                                     list(values["business_source_precedence"]))
    current = assets.snapshot(asset)
    default = matching.source_kind(asset.source, None, precedence.known)
    by_field: dict[str, list[Report]] = {}
    for seen, number, email in rows:
        by_field.setdefault(seen.field, []).append(Report(
            seen.source, seen.value, seen.seen_at, seen.import_run_id, number, email,
            differs=_differs(seen.field, seen.value, current),
        ))
    shown: list[FieldSources] = []
    for spec in CATALOGUE:
        reports = by_field.get(spec.name)
        if not reports or spec.secret:
            continue
        winner = None if spec.name in ADDITIVE else (asset.field_sources or {}).get(spec.name, default)
        setter = next((r for r in reports if r.source == winner), None)
        others = sorted((r for r in reports if r is not setter),
                        key=lambda r: (precedence.rank(spec.name, r.source), r.source))
        shown.append(FieldSources(spec.name, spec.label, current.get(spec.name), winner, setter, others))
    names = {r.source for reports in by_field.values() for r in reports}
    order = sorted(names, key=lambda s: (precedence.rank("engine_version", s), s))
    return AssetSources(shown, order)


def _differs(name: str, reported: Any, values: dict[str, Any]) -> bool:
    """Whether a report says something the asset's current `values` do not: for the additive
    fields, an item (or metadata key) the asset lacks; for the host, a name that is neither
    the host nor one of its aliases (a scanner's address of the server is another name of it);
    otherwise a value not equal after normalisation."""
    current = values.get(name)
    if name == "host" and isinstance(reported, str):
        names = [n for n in [current, *(values.get("aliases") or [])] if isinstance(n, str)]
        return not any(observations.equivalent("host", reported, n) for n in names)
    if name == "aliases" and isinstance(reported, list):
        names = [n for n in [values.get("host"), *(current or [])] if isinstance(n, str)]
        have = {identifiers.host_form(n) for n in names}
        return any(identifiers.host_form(str(v)) not in have for v in reported)
    if name == "tags" and isinstance(reported, list) and isinstance(current, list):
        return bool({str(v).lower() for v in reported} - {str(v).lower() for v in current})
    if name == "metadata" and isinstance(reported, dict) and isinstance(current, dict):
        return any(current.get(k) != v for k, v in reported.items())
    return not observations.equivalent(name, reported, current)
