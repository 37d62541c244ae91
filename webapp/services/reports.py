"""Read-only summaries for the dashboard and `flask stats`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.models import Asset, AuditEvent


@dataclass
class Dashboard:
    total: int
    in_trash: int
    by_engine: list[tuple[str, int]]
    by_environment: list[tuple[str, int]]
    by_criticality: list[tuple[str, int]]
    by_status: list[tuple[str, int]]
    recent_changes: list[AuditEvent]
    asset_names: dict[str, str]

    @staticmethod
    def scale(rows: list[tuple[str, int]]) -> int:
        """The bar length of the largest group, so small groups stay visible."""
        return max((n for _, n in rows), default=1)


def _counts(session: Session, column: Any) -> list[tuple[str, int]]:
    rows = session.execute(
        select(column, func.count())
        .where(Asset.deleted_at.is_(None))
        .group_by(column)
        .order_by(func.count().desc())
    )
    return [(getattr(v, "value", v) or "not set", n) for v, n in rows]


def dashboard(session: Session) -> Dashboard:
    by_engine = _counts(session, Asset.engine)
    recent = list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == "asset")
            .order_by(AuditEvent.id.desc())
            .limit(10)
        )
    )
    ids = {uuid.UUID(e.entity_id) for e in recent if e.entity_id}
    names = {
        str(i): n for i, n in session.execute(select(Asset.id, Asset.name).where(Asset.id.in_(ids)))
    } if ids else {}
    return Dashboard(
        total=sum(n for _, n in by_engine),
        in_trash=session.scalar(
            select(func.count()).select_from(Asset).where(Asset.deleted_at.is_not(None))
        ) or 0,
        by_engine=by_engine,
        by_environment=_counts(session, Asset.environment),
        by_criticality=_counts(session, Asset.criticality),
        by_status=_counts(session, Asset.status),
        recent_changes=recent,
        asset_names=names,
    )
