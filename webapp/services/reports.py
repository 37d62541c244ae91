"""Read-only summaries for the dashboard and `flask stats`. The counts come from the counts cache
(`cached_counts`: dropped by every commit that writes assets); the latest changes are read each
time (an indexed walk of the newest events)."""

from __future__ import annotations

import enum
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from webapp.models import (
    Asset,
    AssetStatus,
    AuditEvent,
    Criticality,
    Environment,
)
from webapp.models.base import utcnow
from webapp.services import cached_counts, settings
from webapp.services.asset_search import is_stale, is_unowned, is_unverified

RECENT_CHANGES = 10


@dataclass
class Dashboard:
    total: int
    in_trash: int
    # (value, live assets with it), most common first for engines, in the enum's order for the
    # rest (criticality from critical down); None: not set (only criticality may be)
    by_engine: list[tuple[str | None, int]]
    by_environment: list[tuple[str | None, int]]
    by_criticality: list[tuple[str | None, int]]
    by_status: list[tuple[str | None, int]]
    stale: int  # SPEC §3, as `/assets?stale=true` counts them
    unverified: int  # never reported by a discovery import (`/assets?unverified=true`)
    unowned_production: int  # `/assets?environment=production&unowned=true`
    recent_changes: list[AuditEvent]
    asset_names: dict[str, str]


def _ordered(counts: Counter[Any], order: list[Any] | None) -> list[tuple[str | None, int]]:
    """Groups with at least one asset, in `order` (values not in it last), or most common
    first when there is no order."""
    def value(v: Any) -> str | None:
        return v.value if isinstance(v, enum.Enum) else v

    if order is None:
        return [(value(v), n) for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))]
    rank = {v: i for i, v in enumerate(order)}
    return [(value(v), counts[v]) for v in sorted(counts, key=lambda v: rank.get(v, len(rank)))
            if counts[v]]


def inventory_counts(session: Session, stale_after_days: int) -> dict[str, Any]:
    """Every count on the dashboard from one pass over the assets (grouped by engine,
    environment, criticality and status, a few hundred groups at most), as plain data (what the
    counts cache stores): the Dashboard fields `in_trash`, `by_*`, `stale`, `unverified` and
    `unowned_production`."""
    live = Asset.deleted_at.is_(None)
    cutoff = utcnow() - timedelta(days=stale_after_days)
    groups = session.execute(
        select(
            Asset.engine, Asset.environment, Asset.criticality, Asset.status,
            func.count().filter(live),
            func.count().filter(Asset.deleted_at.is_not(None)),
            func.count().filter(and_(live, is_stale(Asset, cutoff))),
            func.count().filter(and_(live, is_unverified(Asset))),
            func.count().filter(and_(live, is_unowned(Asset),
                                     Asset.environment == Environment.production)),
        ).group_by(Asset.engine, Asset.environment, Asset.criticality, Asset.status)
    )
    engines: Counter[Any] = Counter()
    environments: Counter[Any] = Counter()
    criticalities: Counter[Any] = Counter()
    statuses: Counter[Any] = Counter()
    in_trash = stale = unverified = unowned = 0
    for engine, environment, criticality, status, n, trashed, n_stale, n_unverified, n_unowned in groups:
        in_trash += trashed
        if not n:
            continue
        engines[engine] += n
        environments[environment] += n
        criticalities[criticality] += n
        statuses[status] += n
        stale += n_stale
        unverified += n_unverified
        unowned += n_unowned
    return {
        "in_trash": in_trash,
        "by_engine": _ordered(engines, None),
        "by_environment": _ordered(environments, list(Environment)),
        "by_criticality": _ordered(criticalities, [*reversed(Criticality), None]),
        "by_status": _ordered(statuses, list(AssetStatus)),
        "stale": stale,
        "unverified": unverified,
        "unowned_production": unowned,
    }


def dashboard(session: Session) -> Dashboard:
    """The dashboard's counts (cached until a commit writes assets, see `cached_counts`), plus
    the latest changes and the names of the assets they touched."""
    # the staleness setting names the figure rather than being a dependency: every audited
    # action moves the audit chain's anchor in `settings`, and a sign-in must not drop the counts
    days = int(settings.get(session, "stale_after_days"))
    counts = cached_counts.read(f"dashboard:{days}", ("assets",), lambda: inventory_counts(session, days))
    recent = list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == "asset")
            .order_by(AuditEvent.id.desc())
            .limit(RECENT_CHANGES)
        )
    )
    ids = {uuid.UUID(e.entity_id) for e in recent if e.entity_id}
    names = {
        str(i): n for i, n in session.execute(select(Asset.id, Asset.name).where(Asset.id.in_(ids)))
    } if ids else {}
    return Dashboard(
        total=sum(n for _, n in counts["by_engine"]),
        recent_changes=recent,
        asset_names=names,
        **counts,
    )
