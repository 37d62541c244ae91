"""Housekeeping (the `maintenance` scheduled task, and `flask maintenance`): purge the trash past
its retention, report stale assets, mark failed the imports and change sets whose worker died,
discard bulk previews nobody applied, and prune old task runs, finished webhook deliveries (30
days) and read notifications (90 days)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.models import Asset
from webapp.models.base import utcnow
from webapp.services import (
    assets,
    change_sets,
    imports,
    notifications,
    settings,
    tasks,
    webhook_history,
)
from webapp.services.actor import Actor
from webapp.services.asset_search import is_stale


@dataclass
class MaintenanceResult:
    purged: int
    stale: int
    reaped: int = 0
    task_runs_pruned: int = 0
    deliveries_pruned: int = 0
    notifications_pruned: int = 0


def stale_count(session: Session) -> int:
    return session.scalar(
        select(func.count()).select_from(Asset).where(
            Asset.deleted_at.is_(None), is_stale(Asset, settings.stale_cutoff(session))
        )
    ) or 0


def run(session: Session, actor: Actor, *, import_stale_seconds: int = imports.STALE_SECONDS,
        trash_days: int | None = None) -> MaintenanceResult:
    """Purge assets in the trash longer than `trash_retention_days` (or `trash_days`, from
    `flask cleanup --days-old N`), each purge audited.

    Stale is derived from `missed_since` (set when a covering scan finishes, services/coverage.py)
    whenever it is read, so nothing needs marking here; the count is reported. Safe to run
    repeatedly.
    """
    days = trash_days if trash_days is not None else int(settings.get(session, "trash_retention_days"))
    cutoff = utcnow() - timedelta(days=days)
    expired = list(session.scalars(
        select(Asset.id).where(Asset.deleted_at.is_not(None), Asset.deleted_at < cutoff)
    ))
    for asset_id in expired:
        assets.purge(session, actor, asset_id)
    reaped = (imports.reap_stale(session, stale_seconds=import_stale_seconds)
              + change_sets.reap_stale(session))
    change_sets.discard_previews(session)
    pruned = tasks.prune(session)
    return MaintenanceResult(purged=len(expired), stale=stale_count(session), reaped=reaped,
                             task_runs_pruned=pruned, deliveries_pruned=webhook_history.prune(session),
                             notifications_pruned=notifications.prune(session))
