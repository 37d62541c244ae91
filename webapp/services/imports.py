"""Discovery import runs (SPEC §6): upload, store, execute, retry, cancel, reap, read.

    run = imports.create_run(session, actor, data=raw, filename="scan.xml", source="nmap")
    jobs.imports.dispatch(run)    # RQ when REDIS_URL is set, else a thread (webapp/jobs/)
    imports.execute(session, run.id)   # what the job runs; also `flask import` in-process

A real (not dry) run is a change set of kind `import` (`change_sets.begin_import` when it
starts, ended with it): every audit event it writes carries its id, so `change_sets.undo` can
take the whole import back.

The `ImportRun` row is the source of truth: the job claims it (`queued` → `running`), writes a
heartbeat and its progress after every batch, and ends it `succeeded`, `failed` or `cancelled`.
A run whose heartbeat stops (its worker was killed) is marked failed by `reap_stale`, and
`retry` queues a new run of the same stored file: records already written come out
`unchanged`, so nothing is duplicated.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, not_, or_, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from webapp.discovery import DiscoveryError, detect_format, parse
from webapp.models import (
    Asset,
    AuditAction,
    AuditEvent,
    EventSeverity,
    HostBridge,
    ImportFile,
    ImportFileChunk,
    ImportRecord,
    ImportRun,
    ImportStatus,
    RecordOutcome,
    Role,
)
from webapp.models.base import utcnow
from webapp.services import (
    bulk,
    change_sets,
    database,
    matching,
    outbox,
    policy_results,
    relationships,
)
from webapp.services.actor import Actor
from webapp.services.coverage import finish_run as record_coverage
from webapp.services.errors import InvalidState, NotFound, ValidationFailed, is_connection_error
from webapp.services.import_outcomes import (  # noqa: F401 (re-exported: callers read them here)
    APPLIED,
    RecordView,
    Sighting,
    asset_names,
    run_numbers,
    sightings,
)
from webapp.services.pipeline import IMPORT_LOCK, ROW_ERRORS_MAX, Pipeline, touch_seen

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
SOURCE_MAX = 100
FILENAME_MAX = 255
# the defaults of the app's IMPORT_BATCH_SIZE and IMPORT_STALE_SECONDS (webapp/config.py)
BATCH_SIZE = 5000  # records per transaction
FREEZE_MIN = 5000  # records from which a run keeps the garbage collector off its parsed records
# what may happen to assets between two runs of one file without changing the decisions of
# records whose own asset did not change (`_decisions_stand`); links, merges, purges and undos
# may (a re-import restores a removed link, a merge moves records)
ASSET_EDITS = (AuditAction.create, AuditAction.update, AuditAction.delete, AuditAction.restore,
               AuditAction.revert, AuditAction.exception_grant, AuditAction.propose,
               AuditAction.approve, AuditAction.reject)
# what people do that no import decision reads (signing in, tokens, revealing a secret, exports)
UNRELATED = (AuditAction.login, AuditAction.login_failed, AuditAction.logout, AuditAction.token_create,
             AuditAction.token_revoke, AuditAction.reveal_secret, AuditAction.export)
STALE_SECONDS = 300  # a running import without a heartbeat this long has lost its worker
IMPORT_NUMBER_LOCK = 0x494D504E  # the advisory lock under which an upload takes its run number
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")

Progress = Callable[[ImportRun], None]


# --- upload ---------------------------------------------------------------------------------

def clean_filename(filename: str | None) -> str:
    """The file's own name for display: no directories (`../`, `C:\\`), no NUL or control
    characters. It is never used as a path; the file lives in the database."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("", name).strip().lstrip(".") or "upload"
    return name[-FILENAME_MAX:]


def _clean_source(source: str | None, default: str) -> str:
    if source is None or not source.strip():
        return default
    source = _UNSAFE_NAME.sub("", source).strip()
    if len(source) > SOURCE_MAX:
        raise ValidationFailed({"source": f"Enter at most {SOURCE_MAX} characters."})
    if source.lower() == "manual":
        raise ValidationFailed({"source": "“manual” is reserved for changes made by people."})
    return source


def create_run(
    session: Session,
    actor: Actor,
    *,
    data: bytes,
    filename: str | None,
    source: str | None = None,
    dry_run: bool = False,
) -> ImportRun:
    """Check the file's format from its content, store it, and queue a run (not started).

    ValidationFailed (422) for an empty file or one in no supported format, naming them.
    """
    name = clean_filename(filename)
    try:
        fmt = detect_format(data, name)
    except DiscoveryError as exc:
        raise ValidationFailed({"file": str(exc)}, message=str(exc)) from None
    run = ImportRun(
        file_id=_store_file(session, data).id,
        filename=name,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        format=fmt,
        source=_clean_source(source, fmt),
        uploaded_by=actor.user_id,
        uploaded_by_label=actor.label[:300],
        dry_run=bool(dry_run),
    )
    return _add_numbered(session, run)


def retry(session: Session, actor: Actor, run_id: uuid.UUID | str, *,
          apply: bool = False) -> ImportRun:
    """Queue a new run of a finished run's file (same format, source and dry-run choice).
    `apply`: a real run of a dry run's file (`Apply this file`)."""
    old = get_run(session, run_id)
    if not old.status.finished:
        raise InvalidState("This import is still running; wait for it to finish or cancel it.")
    if apply and not old.dry_run:
        raise InvalidState("This import was not a dry run: its file is already applied.")
    run = ImportRun(
        file_id=old.file_id, filename=old.filename, sha256=old.sha256, size=old.size,
        format=old.format, source=old.source, uploaded_by=actor.user_id,
        uploaded_by_label=actor.label[:300], dry_run=old.dry_run and not apply, retry_of=old.id,
    )
    return _add_numbered(session, run)


def _add_numbered(session: Session, run: ImportRun) -> ImportRun:
    # read the highest number, then append after it, in turn with every other upload (on any
    # server): two at once would take the same number, and the retry of a clash rolled back the
    # file stored just before (a 500 for one of three concurrent uploads, tests/jobs/test_scale_out)
    bulk.append_lock(session, IMPORT_NUMBER_LOCK)
    with session.no_autoflush:
        run.number = (session.scalar(select(func.max(ImportRun.number))) or 0) + 1
    session.add(run)
    session.commit()
    return run


def _store_file(session: Session, data: bytes) -> ImportFile:
    digest = hashlib.sha256(data).hexdigest()
    existing = session.scalar(
        select(ImportFile).where(ImportFile.sha256 == digest, ImportFile.size == len(data))
    )
    if existing is not None:
        return existing
    stored = ImportFile(id=uuid.uuid4(), sha256=digest, size=len(data))
    session.add(stored)
    session.flush()
    for seq, start in enumerate(range(0, len(data), CHUNK_BYTES)):
        session.add(ImportFileChunk(file_id=stored.id, seq=seq, data=data[start : start + CHUNK_BYTES]))
    session.flush()
    return stored


def read_file(session: Session, file_id: uuid.UUID) -> bytes:
    chunks = session.scalars(
        select(ImportFileChunk.data).where(ImportFileChunk.file_id == file_id).order_by(ImportFileChunk.seq)
    )
    return b"".join(chunks)


# --- running --------------------------------------------------------------------------------

def _claim(session: Session, run_id: uuid.UUID, runner: str) -> bool:
    now = utcnow()
    claimed = session.execute(
        update(ImportRun)
        .where(ImportRun.id == run_id, ImportRun.status == ImportStatus.queued)
        .values(status=ImportStatus.running, started_at=now, heartbeat_at=now, runner=runner)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return claimed == 1


def execute(
    session: Session,
    run_id: uuid.UUID | str,
    *,
    runner: str = "inline",
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportRun:
    """Run a queued import to its end in this process, `batch_size` records per transaction
    (the app's `IMPORT_BATCH_SIZE`). A run that is not queued (already taken by another
    worker, finished, cancelled) is left alone and returned as it is."""
    run_id = _uuid(run_id)
    if not _claim(session, run_id, runner):
        return get_run(session, run_id)
    run = get_run(session, run_id)
    session.refresh(run)
    try:
        if not run.dry_run and run.change_set_id is None:
            change_sets.begin_import(session, run)
        if not run.dry_run and _replay(session, run):
            if progress:
                progress(run)
            return _finish(session, run, ImportStatus.succeeded)
        data = read_file(session, run.file_id)
        try:
            result = parse(data, filename=run.filename, format=run.format)
        except DiscoveryError as exc:
            return _finish(session, run, ImportStatus.failed, error=str(exc))
        del data
        with _long_lived(len(result.records) >= FREEZE_MIN) as keep:
            run.total = len(result.records)
            if _status(session, run)[0] != ImportStatus.running:
                return _left_by_reaper(session, run)
            if result.source and run.source == run.format:  # no label given: the file's own
                with contextlib.suppress(ValidationFailed):  # an unusable label: keep the default
                    run.source = _clean_source(result.source, run.format)
            run.warnings = result.warnings[:ROW_ERRORS_MAX]
            run.heartbeat_at = utcnow()
            session.commit()
            if progress:
                progress(run)
            relations = [r for record in result.records for r in record.relations]
            pipeline = Pipeline(session, run, matching.link_pairs(relations))
            size = max(1, int(batch_size))
            # each batch's records are let go once processed (what later batches need of them
            # the pipeline keeps), so the parsed file and what the run learns are not held at
            # once: peak memory stays within SPEC §11's bound at 100,000 records
            records, coverage = result.records, result.coverage
            del result
            while records:
                status, cancel = _status(session, run)
                if status != ImportStatus.running:
                    return _left_by_reaper(session, run)
                if cancel:
                    return _finish(session, run, ImportStatus.cancelled, error="Cancelled by a user.")
                batch = records[:size]
                del records[:size]
                pipeline.process(batch)
                del batch
                keep()
                if progress:
                    progress(run)
            if _status(session, run)[0] != ImportStatus.running:
                return _left_by_reaper(session, run)
            if not run.dry_run:  # every record is written: the file's links can be resolved
                bulk.advisory_lock(session, IMPORT_LOCK)
                run.linked = relationships.link_discovered(session, pipeline.actor, run, relations)
                record_coverage(session, run, coverage)  # staleness: what it covered and missed
            return _finish(session, run, ImportStatus.succeeded)
    except Exception as exc:  # the run must not stay "running" forever; the cause is logged
        log.exception("import %s failed", run_id)
        if is_connection_error(exc):
            error = ("The database connection was lost during the import (the server restarted, or "
                     "the network dropped); batches committed before it are kept. Run it again to finish.")
        else:
            error = (f"The import stopped on an internal error ({type(exc).__name__}); "
                     "batches committed before it are kept. Run it again to finish.")
        return _record_failure(session, run_id, error)


def _record_failure(session: Session, run_id: uuid.UUID, error: str, attempts: int = 6) -> ImportRun:
    """Mark the run failed with `error`. The database may be coming back from a restart: try a
    few times (1, 2, 4… s); if it never answers, the reaper marks the run later."""
    for attempt in range(attempts):
        try:
            session.rollback()
            return _finish(session, get_run(session, run_id), ImportStatus.failed, error=error)
        except (OperationalError, InterfaceError):
            if attempt == attempts - 1:
                raise
            time.sleep(min(2 ** attempt, 16))
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _long_lived(large: bool) -> Iterator[Callable[[], None]]:
    """While a large run executes: the parsed records (and what batches keep: bridges, a dry
    run's overlay) live until it ends, so the collector is kept from scanning them again and
    again (full collections over 100,000 records cost seconds per batch). Acyclic garbage is
    still freed at once by reference counting. Yields `keep`, to call after each batch. A small
    run skips it: its one full collection of a long-lived worker's heap would cost more than
    the run."""
    if not large:
        yield lambda: None
        return
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, *thresholds[1:])  # a batch allocates millions of small objects
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def _status(session: Session, run: ImportRun) -> tuple[ImportStatus, bool]:
    """The run's status and cancel flag as committed (another process may have changed them)."""
    status, cancel = session.execute(
        select(ImportRun.status, ImportRun.cancel_requested).where(ImportRun.id == run.id)
    ).one()
    return status, bool(cancel)


def _left_by_reaper(session: Session, run: ImportRun) -> ImportRun:
    """The reaper declared this run dead while its worker was still alive: the worker stops
    where it is and leaves the run as the reaper left it."""
    session.refresh(run)
    return run


def _finish(session: Session, run: ImportRun, status: ImportStatus, error: str | None = None) -> ImportRun:
    run.status = status
    run.error = error
    run.finished_at = utcnow()
    run.heartbeat_at = run.finished_at
    if run.change_set_id is not None:
        change_sets.finish_import(session, run.change_set_id, succeeded=status == ImportStatus.succeeded,
                                  error=error)
    if status == ImportStatus.succeeded and not run.dry_run:
        session.flush()
        run.watermark = watermark(session)
        written = run.created + run.updated
        database.analyze_changed(session, {"assets": written, "asset_identifiers": written,
                                           "audit_events": written, "import_records": run.total})
    if status in (ImportStatus.succeeded, ImportStatus.failed):
        announce(session, run.id, run.number, run.filename, status, uploaded_by=run.uploaded_by,
                 dry_run=run.dry_run, error=error,
                 counts={o.value: getattr(run, o.value) for o in RecordOutcome} | {"total": run.total})
    session.commit()
    return run


def announce(session: Session, run_id: uuid.UUID, number: int, filename: str, status: ImportStatus, *,
             uploaded_by: uuid.UUID | None, dry_run: bool = False, error: str | None = None,
             counts: dict[str, int] | None = None) -> None:
    """Raise `import_finished` or `import_failed` in the caller's transaction (SPEC §13).
    Finished: for the person who started it (analysts when no person did, e.g. cron). Failed
    (including a run the reaper declared dead): for every analyst and above, the starter
    among them (only they can run it again), severity high."""
    what = f"Dry run #{number}" if dry_run else f"Import #{number}"
    payload = {"import_id": str(run_id), "number": number, "filename": filename, "status": status.value,
               "dry_run": dry_run, "counts": counts or {}}
    if status == ImportStatus.succeeded:
        outbox.emit(session, "import_finished", subject=f"{what} ({filename}) finished",
                    body=", ".join(f"{v} {k}" for k, v in (counts or {}).items() if v and k != "total"),
                    link=f"/imports/{run_id}", payload=payload, recipient_id=uploaded_by,
                    min_role=Role.analyst)
    else:
        outbox.emit(session, "import_failed", subject=f"{what} ({filename}) failed",
                    severity=EventSeverity.high, body=error or "", link=f"/imports/{run_id}",
                    payload=payload | {"error": error}, min_role=Role.analyst)


# --- replaying an identical run -------------------------------------------------------------

def watermark(session: Session) -> str:
    """Everything an import's decisions depend on besides its file: the audit log (every
    change to assets and settings), the learnt host bridges and the recorded sightings."""
    newest_event = session.scalar(select(func.max(AuditEvent.id))) or 0
    bridges = session.scalar(select(func.count()).select_from(HostBridge)) or 0
    newest_record = session.scalar(select(func.max(ImportRecord.id))) or 0
    return f"{newest_event}:{bridges}:{newest_record}"


def _replay(session: Session, run: ImportRun) -> bool:
    """Re-importing the file of the latest successful run, when nothing has changed since that
    run finished, must decide exactly what it decided: every record it created or updated is
    now `unchanged`, and failed and skipped records fail and skip for the same reasons. Point
    at those decisions (`replay_of`) instead of parsing and matching again, and write no
    record rows. The same holds after changes elsewhere in the inventory when every record of
    that run was applied to an asset that has not changed since (`_decisions_stand`): each
    record is then identical to one applied to its asset's current version, which a full run
    finds `unchanged` without identifying it again (`Lookup.already_applied`). False when it
    does not apply."""
    bulk.advisory_lock(session, IMPORT_LOCK)
    previous = session.scalar(
        select(ImportRun)
        .where(ImportRun.status == ImportStatus.succeeded, ImportRun.dry_run.is_(False),
               ImportRun.watermark.is_not(None), ImportRun.id != run.id)
        .order_by(ImportRun.finished_at.desc())
        .limit(1)
    )
    if (
        previous is None
        or (previous.sha256, previous.size, previous.format) != (run.sha256, run.size, run.format)
        or (previous.watermark != watermark(session) and not _decisions_stand(session, previous))
    ):
        session.rollback()
        return False
    now = utcnow()
    origin = previous.replay_of or previous.id
    run.replay_of = origin
    counts = dict(session.execute(
        select(ImportRecord.outcome, func.count()).where(ImportRecord.run_id == origin)
        .group_by(ImportRecord.outcome)
    ).tuples().all())
    counts[RecordOutcome.unchanged] = sum(counts.pop(o, 0) for o in APPLIED)
    seen = select(ImportRecord.asset_id).where(ImportRecord.run_id == origin,
                                                ImportRecord.outcome.in_(APPLIED),
                                                ImportRecord.asset_id.is_not(None))
    # seen again: staleness changes, so their policy results are recomputed before the commit
    policy_results.touch(session, touch_seen(session, Asset.__table__.c.id.in_(seen), now))
    run.total = run.processed = previous.total
    for outcome in RecordOutcome:
        setattr(run, outcome.value, counts.get(outcome, 0))
    run.row_errors = previous.row_errors
    run.warned, run.row_warnings = previous.warned, previous.row_warnings
    run.warnings = previous.warnings
    run.heartbeat_at = now
    session.flush()
    return True


def _decisions_stand(session: Session, previous: ImportRun) -> bool:
    """Whether every decision of `previous` still stands although the inventory changed since:
    no host bridge was learnt and no record written since (no other run: identification reads
    both), every audit event since is an edit of an asset (`ASSET_EDITS`: no setting, review
    item, relationship or merge changed) or something no decision reads (`UNRELATED`), and every record of the run was applied to an asset that is live at the version
    the record left it (a record that failed, was skipped or flagged, or whose asset changed,
    must be identified again: a full run)."""
    event_id, bridges, record_id = (int(part) for part in (previous.watermark or "0:0:0").split(":"))
    _, bridges_now, record_now = (int(part) for part in watermark(session).split(":"))
    if (bridges_now, record_now) != (bridges, record_id):
        return False
    other = not_(or_(and_(AuditEvent.entity_type == "asset", AuditEvent.action.in_(ASSET_EDITS)),
                     AuditEvent.action.in_(UNRELATED)))
    if session.scalar(select(exists().where(AuditEvent.id > event_id, other))):
        return False
    current = exists().where(Asset.id == ImportRecord.asset_id, Asset.version == ImportRecord.asset_version,
                             Asset.deleted_at.is_(None))
    changed = exists().where(ImportRecord.run_id == (previous.replay_of or previous.id),
                             not_(and_(ImportRecord.outcome.in_(APPLIED), current)))
    return not session.scalar(select(changed))


def fail_unstarted(session: Session, run_id: uuid.UUID, reason: str) -> None:
    """Mark a queued run failed (its job could not be handed to any runner)."""
    failed = session.execute(
        update(ImportRun)
        .where(ImportRun.id == run_id, ImportRun.status == ImportStatus.queued)
        .values(status=ImportStatus.failed, error=reason, finished_at=utcnow())
        .returning(ImportRun.number, ImportRun.filename, ImportRun.uploaded_by, ImportRun.dry_run)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if failed is not None:
        number, filename, uploaded_by, dry_run = failed
        announce(session, run_id, number, filename, ImportStatus.failed, uploaded_by=uploaded_by,
                 dry_run=dry_run, error=reason)
    session.commit()


def cancel(session: Session, actor: Actor, run_id: uuid.UUID | str) -> ImportRun:
    """Stop a run: a queued run is cancelled at once, a running one after its current batch
    (batches already committed stay)."""
    run = get_run(session, run_id)
    if run.status == ImportStatus.queued:
        _finish(session, run, ImportStatus.cancelled, error=f"Cancelled by {actor.label} before it started.")
    elif run.status == ImportStatus.running:
        run.cancel_requested = True
        session.commit()
    else:
        raise InvalidState("This import has already finished.")
    return run


def reap_stale(session: Session, *, now: datetime | None = None,
               stale_seconds: int = STALE_SECONDS) -> int:
    """Mark failed every running run whose worker has not written a heartbeat for
    `stale_seconds` (the app's `IMPORT_STALE_SECONDS`): its worker died. Committed batches
    stay; `retry` finishes it."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=stale_seconds)
    error = (f"The worker stopped responding (no heartbeat for {stale_seconds} s): it was stopped or "
             "killed, or lost its database connection. Batches it committed are kept; run the "
             "import again to finish it.")
    reaped = session.execute(
        update(ImportRun)
        .where(ImportRun.status == ImportStatus.running, ImportRun.heartbeat_at < cutoff)
        .values(status=ImportStatus.failed, finished_at=now, error=error)
        .returning(ImportRun.change_set_id, ImportRun.id, ImportRun.number, ImportRun.filename,
                   ImportRun.uploaded_by, ImportRun.dry_run)
        .execution_options(synchronize_session=False)
    ).all()
    for change_set_id, run_id, number, filename, uploaded_by, dry_run in reaped:
        if change_set_id is not None:  # its change set ends with it (what it wrote can be undone)
            change_sets.finish_import(session, change_set_id, succeeded=False, error=error)
        announce(session, run_id, number, filename, ImportStatus.failed, uploaded_by=uploaded_by,
                 dry_run=dry_run, error=error)
    session.commit()
    return len(reaped)


# --- reading --------------------------------------------------------------------------------

def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise NotFound("No such import.") from None


def get_run(session: Session, run_id: uuid.UUID | str) -> ImportRun:
    run = session.get(ImportRun, _uuid(run_id))
    if run is None:
        raise NotFound("No such import.")
    return run


def list_runs(session: Session, *, limit: int = 50, before_number: int | None = None) -> list[ImportRun]:
    """Runs, newest first; `before_number` pages on."""
    stmt = select(ImportRun).order_by(ImportRun.number.desc()).limit(limit)
    if before_number is not None:
        stmt = stmt.where(ImportRun.number < before_number)
    return list(session.scalars(stmt))


def list_records(
    session: Session,
    run_id: uuid.UUID | str,
    *,
    outcome: RecordOutcome | None = None,
    after_seq: int | None = None,
    limit: int = 100,
) -> list[ImportRecord] | list[RecordView]:
    """A run's record outcomes in file order; `after_seq` pages on. A replayed run reads the
    outcomes of the run it replayed, as they came out again (`created`/`updated` are now
    `unchanged`, with no changes)."""
    run = get_run(session, run_id)  # usually already in the session: no query
    origin = run.replay_of or run.id
    stmt = select(ImportRecord).where(ImportRecord.run_id == origin).order_by(ImportRecord.seq).limit(limit)
    if after_seq is not None:
        stmt = stmt.where(ImportRecord.seq > after_seq)
    if run.replay_of is None:
        if outcome is not None:
            stmt = stmt.where(ImportRecord.outcome == outcome)
        return list(session.scalars(stmt))
    if outcome in (RecordOutcome.created, RecordOutcome.updated):
        return []
    if outcome == RecordOutcome.unchanged:
        stmt = stmt.where(ImportRecord.outcome.in_(APPLIED))
    elif outcome is not None:
        stmt = stmt.where(ImportRecord.outcome == outcome)
    return [RecordView.replayed(record, run) for record in session.scalars(stmt)]
