"""Helpers for import tests: run a file through the real pipeline and read what it did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.models import Asset, AuditEvent, ImportRecord, ImportRun
from webapp.services import imports
from webapp.services.actor import Actor

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "discovery"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def run_file(
    session: Session,
    data: bytes | str,
    filename: str = "upload.json",
    *,
    source: str | None = None,
    dry_run: bool = False,
    actor: Actor | None = None,
) -> ImportRun:
    """Upload and execute in this process, as `flask import` does."""
    raw = data.encode() if isinstance(data, str) else data
    run = imports.create_run(session, actor or Actor.cli("tester"), data=raw, filename=filename,
                             source=source, dry_run=dry_run)
    return imports.execute(session, run.id)


def inventory(*assets: dict[str, Any]) -> str:
    return json.dumps({"source": "test", "assets": list(assets)})


def outcomes(session: Session, run: ImportRun) -> dict[str, str]:
    return {r.key: r.outcome.value for r in imports.list_records(session, run.id, limit=10_000)}


def count(session: Session, model: Any, *where: Any) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def assets(session: Session) -> list[Asset]:
    session.expire_all()
    return list(session.scalars(select(Asset).order_by(Asset.name)))


def audit_count(session: Session) -> int:
    return count(session, AuditEvent)


def records(session: Session, run: ImportRun) -> list[ImportRecord]:
    return imports.list_records(session, run.id, limit=100_000)
