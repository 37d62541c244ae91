"""Backups (SPEC §8, §13): a `dump` into `BACKUP_DIR` named `inventory-<UTC timestamp>.jsonl.gz`,
keeping the newest `BACKUP_KEEP` (default 7).

`run_backup(session)` is what `flask backup` runs and what a scheduled task can call: it takes
its settings from the app's config unless given, writes the dump (beside the target as
`.partial`, renamed when complete: a full disk or a dropped connection leaves no file that looks
whole), and only then removes the oldest backups past `keep`. Files that do not follow the
naming pattern are never touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from flask import current_app
from sqlalchemy.orm import Session

from webapp.models.base import utcnow
from webapp.services import dump

PATTERN = re.compile(r"^inventory-(\d{8}T\d{6}Z)(-\d+)?\.jsonl\.gz$")
DEFAULT_KEEP = 7


class BackupFailed(RuntimeError):
    """No backup was made (the message says why); older backups were left as they were."""


@dataclass
class BackupResult:
    path: Path
    size: int
    rows: int
    tables: int
    anchor: str | None
    removed: list[Path] = field(default_factory=list)

    @property
    def message(self) -> str:
        removed = f"; removed {len(self.removed)} older backup(s)" if self.removed else ""
        return (f"Backed up {self.rows:,} rows of {self.tables} tables to {self.path} ({self.size:,} bytes); "
                f"audit anchor {self.anchor or 'none'}{removed}.")


def backups(directory: Path) -> list[Path]:
    """The backups in `directory`, oldest first (their names sort by time)."""
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if PATTERN.match(p.name) and p.is_file()),
                  key=lambda p: p.name)


def _target(directory: Path, now: datetime) -> Path:
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"inventory-{stamp}.jsonl.gz"
    n = 2
    while path.exists():  # two backups in one second
        path = directory / f"inventory-{stamp}-{n}.jsonl.gz"
        n += 1
    return path


def run_backup(session: Session, *, backup_dir: Path | str | None = None, keep: int | None = None,
               now: datetime | None = None, progress: dump.Progress | None = None) -> BackupResult:
    """Dump the database into the backup directory and keep the newest `keep` backups."""
    directory_setting = backup_dir if backup_dir is not None else current_app.config.get("BACKUP_DIR")
    if not directory_setting:
        raise BackupFailed("BACKUP_DIR is not set: set it to the directory backups go to.")
    keep = int(keep if keep is not None else current_app.config.get("BACKUP_KEEP") or DEFAULT_KEEP)
    if keep < 1:
        raise BackupFailed("BACKUP_KEEP must be at least 1.")
    directory = Path(directory_setting)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupFailed(f"Cannot create the backup directory {directory}: {exc.strerror or exc}.") from None
    try:
        result = dump.write_dump(session.get_bind(), _target(directory, (now or utcnow())), progress=progress)
    except dump.DumpFailed as exc:
        raise BackupFailed(f"The backup failed and was removed: {exc}") from None
    assert result.path is not None
    removed = []
    existing = backups(directory)
    for old in existing[:max(len(existing) - keep, 0)]:
        if old != result.path:
            old.unlink(missing_ok=True)
            removed.append(old)
    return BackupResult(result.path, result.bytes_written, result.rows, len(result.tables),
                        str(result.anchor) if result.anchor else None, removed)
