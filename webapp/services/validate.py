"""`flask validate`: read-only integrity checks, each problem with its ids (SPEC §8).

    report = check(session)                       # reads only
    report = check(session, repair=True, actor=…)  # and rewrites the derived rows, audited

Checks: the audit chain and its anchor; every secret decrypts with the configured keys; no
orphan rows (every foreign key of the metadata, generically: identifiers, import records,
relationships, tags, policy results, …, which SQLite does not enforce); every `merged_into`
chain ends at a live asset, without a cycle; each asset's identifier keys are the ones its
fields give (`identifiers.keys_for`); each asset's policy results are what an evaluation now
would store (`policy_results.expected`); the settings pass their own validation.

`repair` rewrites only what is derived from other rows (identifiers and policy results,
orphans of those two tables included), never the audit log or anything a person entered; the
rewrite and one `repair` audit event commit together.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Table, and_, delete, exists, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from webapp.models import Asset, AssetIdentifier, AuditAction, Base, PolicyResult, Setting
from webapp.services import audit, identifiers, keyring, policy_results, settings
from webapp.services.actor import Actor
from webapp.services.errors import ValidationFailed

BATCH = 2_000
LISTED = 200  # problems of one kind listed in full; past that, a count
DERIVED = (AssetIdentifier.__table__.name, PolicyResult.__table__.name)


@dataclass
class Problem:
    kind: str  # audit, secret, orphan, merge, identifiers, policy, settings
    message: str


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    unlisted: dict[str, int] = field(default_factory=dict)  # kind -> problems past LISTED
    checks: list[str] = field(default_factory=list)
    repaired: dict[str, int] = field(default_factory=dict)
    # what --repair needs: the assets whose identifiers or results are wrong, orphan derived rows
    stale_identifiers: set[uuid.UUID] = field(default_factory=set)
    stale_results: set[uuid.UUID] = field(default_factory=set)
    orphan_derived: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, message: str) -> None:
        if sum(1 for p in self.problems if p.kind == kind) >= LISTED:
            self.unlisted[kind] = self.unlisted.get(kind, 0) + 1
            return
        self.problems.append(Problem(kind, message))

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unlisted

    @property
    def count(self) -> int:
        return len(self.problems) + sum(self.unlisted.values())


def check(session: Session, *, repair: bool = False, actor: Actor | None = None,
          progress: Callable[[str], None] | None = None) -> Report:
    """Run every check; with `repair`, rewrite the derived rows found wrong (audited)."""
    report = Report()
    steps: list[tuple[str, str, Callable[[Session, Report], None]]] = [
        ("audit", "audit chain and anchor", _audit), ("secret", "secrets decrypt", _secrets),
        ("orphan", "no orphan rows", _orphans), ("merge", "merge chains end at live assets", _merges),
        ("identifiers", "identifier keys match asset fields", _identifiers),
        ("policy", "policy results are current", _policy), ("settings", "settings are valid", _settings),
    ]
    for kind, label, step in steps:
        if progress is not None:
            progress(label)
        try:
            step(session, report)
        except OperationalError:  # the database is down or went away: nothing can be checked
            raise
        except Exception as exc:  # noqa: BLE001 (a check that cannot run is itself a problem)
            session.rollback()
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            report.add(kind, f"the check “{label}” could not run: {reason}")
        report.checks.append(label)
    session.rollback()  # nothing was written; end the read transaction
    if repair:
        _repair(session, report, actor or Actor.cli("flask validate --repair"))
    return report


# --- the checks -----------------------------------------------------------------------------

def _audit(session: Session, report: Report) -> None:
    result = audit.verify(session)
    if not result.ok:
        at = f" at event {result.first_broken_id}" if result.first_broken_id is not None else ""
        report.add("audit", f"the audit chain is broken{at}: {result.reason}")


def _secrets(session: Session, report: Report) -> None:
    connection = session.connection()
    keys = keyring.configured_keys(keyring.stored_salt(connection))
    for table, key, column in keyring.check_secrets(connection, keys).undecryptable:
        report.add("secret", f"{table} {key}: {column} decrypts with none of the configured keys")


def _foreign_keys() -> Iterator[tuple[Table, ForeignKeyConstraint]]:
    for table in Base.metadata.sorted_tables:
        for constraint in sorted(table.foreign_key_constraints, key=lambda c: c.name or ""):
            yield table, constraint


def _orphans(session: Session, report: Report) -> None:
    for table, constraint in _foreign_keys():
        parent = constraint.referred_table
        other = parent.alias("parent")  # the same table when it refers to itself (merged_into)
        pairs = [(element.parent, other.c[element.column.name]) for element in constraint.elements]
        children = [child for child, _ in pairs]
        keys = list(table.primary_key.columns)
        orphan = and_(*[c.is_not(None) for c in children], ~exists().where(and_(*[p == c for c, p in pairs])))
        # the first LISTED with their ids, then how many in all (a million orphans stay a count)
        rows = session.execute(select(*keys, *children).where(orphan).order_by(*keys).limit(LISTED)).all()
        for row in rows:
            ident = ", ".join(f"{k.name}={v}" for k, v in zip(keys, row, strict=False))
            refs = ", ".join(f"{c.name}={v}" for c, v in zip(children, row[len(keys):], strict=True))
            report.add("orphan", f"{table.name} ({ident}): {refs} refers to a missing {parent.name} row")
        found = len(rows)
        if found == LISTED:
            found = session.scalar(select(func.count()).select_from(table).where(orphan)) or 0
            report.unlisted["orphan"] = report.unlisted.get("orphan", 0) + found - LISTED
        if found and table.name in DERIVED:
            report.orphan_derived[table.name] = report.orphan_derived.get(table.name, 0) + found


def _merges(session: Session, report: Report) -> None:
    merged: dict[uuid.UUID, uuid.UUID] = {a: b for a, b in session.execute(
        select(Asset.id, Asset.merged_into).where(Asset.merged_into.is_not(None)))}
    ends: dict[uuid.UUID, uuid.UUID] = {}
    for start in merged:
        seen = [start]
        current = merged[start]
        while current in merged and current not in seen:
            seen.append(current)
            current = merged[current]
        if current in seen:
            report.add("merge", f"asset {start}: its merged_into chain loops ({' → '.join(map(str, seen))} → {current})")
            continue
        ends[start] = current
    live = set()
    targets = sorted(set(ends.values()))
    for i in range(0, len(targets), BATCH):
        live |= set(session.scalars(select(Asset.id).where(Asset.id.in_(targets[i:i + BATCH]),
                                                           Asset.deleted_at.is_(None))))
    for start, end in ends.items():
        if end not in live:
            exists_ = session.get(Asset, end) is not None
            state = "is in the trash" if exists_ else "does not exist"
            report.add("merge", f"asset {start}: its merged_into chain ends at asset {end}, which {state}")


def _asset_batches(session: Session, columns: list[Any]) -> Iterator[list[Any]]:
    """Every asset (rows of `columns`, the id first), a batch at a time, in id order."""
    after: uuid.UUID | None = None
    while True:
        stmt = select(*columns).order_by(Asset.id).limit(BATCH)
        if after is not None:
            stmt = stmt.where(Asset.id > after)
        rows = session.execute(stmt).all()
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def _identifiers(session: Session, report: Report) -> None:
    fields = sorted(identifiers.KEY_FIELDS)
    for rows in _asset_batches(session, [Asset.id, *[getattr(Asset, f) for f in fields]]):
        first, last = rows[0][0], rows[-1][0]
        stored: dict[uuid.UUID, set[str]] = {}
        for asset_id, key in session.execute(select(AssetIdentifier.asset_id, AssetIdentifier.key)
                                             .where(AssetIdentifier.asset_id.between(first, last))):
            stored.setdefault(asset_id, set()).add(key)
        for row in rows:
            wanted = set(identifiers.keys_for(dict(zip(fields, row[1:], strict=True))))
            have = stored.get(row[0], set())
            if wanted != have:
                missing, extra = sorted(wanted - have), sorted(have - wanted)
                report.stale_identifiers.add(row[0])
                report.add("identifiers", f"asset {row[0]}: identifier keys differ from its fields"
                           + (f"; missing {missing}" if missing else "") + (f"; not derived {extra}" if extra else ""))


def _policy(session: Session, report: Report) -> None:
    base = policy_results.context(session)
    for rows in _asset_batches(session, policy_results.FACT_COLUMNS):
        first, last = rows[0][0], rows[-1][0]

        def within(column: Any, lo: uuid.UUID = first, hi: uuid.UUID = last) -> Any:
            return column.between(lo, hi)

        _live, wanted = policy_results.expected(session, rows, base, within)
        stored = policy_results.stored_results(session, within)
        wrong: dict[uuid.UUID, list[str]] = {}
        for key in sorted(set(wanted) | set(stored), key=lambda k: (str(k[0]), k[1])):
            if wanted.get(key) != stored.get(key):
                now, was = wanted.get(key), stored.get(key)
                wrong.setdefault(key[0], []).append(
                    f"{key[1]}: stored {was[0].value if was else 'nothing'}, now "
                    f"{now[0].value if now else 'not applicable'}")
        for asset_id, differences in wrong.items():
            report.stale_results.add(asset_id)
            report.add("policy", f"asset {asset_id}: policy results are not current ({'; '.join(differences)})")


def _settings(session: Session, report: Report) -> None:
    values = {}
    for row in session.scalars(select(Setting).where(Setting.key.in_(settings.DEFAULTS)).order_by(Setting.key)):
        try:
            values[row.key] = settings._validate(row.key, row.value)
        except ValidationFailed as exc:
            for name, message in exc.errors.items():
                report.add("settings", f"setting {row.key} ({name}): {message} (stored: {row.value!r:.100})")
    merged = {**settings.DEFAULTS, **values}
    if merged["review_threshold"] > merged["auto_merge_threshold"]:
        report.add("settings", "setting review_threshold is above auto_merge_threshold")


# --- repair ---------------------------------------------------------------------------------

def _repair(session: Session, report: Report, actor: Actor) -> None:
    """Rewrite the derived rows found wrong, and record it, in one transaction."""
    if not (report.stale_identifiers or report.stale_results or report.orphan_derived):
        return
    orphans = 0
    for table in (AssetIdentifier.__table__, PolicyResult.__table__):
        if table.name in report.orphan_derived:
            orphans += session.execute(delete(table).where(
                ~exists().where(Asset.id == table.c.asset_id))).rowcount or 0
    stale = sorted(report.stale_identifiers)
    for i in range(0, len(stale), BATCH):
        chunk = stale[i:i + BATCH]
        fields = sorted(identifiers.KEY_FIELDS)
        rows = session.execute(select(Asset.id, *[getattr(Asset, f) for f in fields])
                               .where(Asset.id.in_(chunk))).all()
        identifiers.replace(session, [(r[0], dict(zip(fields, r[1:], strict=True))) for r in rows])
        gone = set(chunk) - {r[0] for r in rows}
        if gone:
            session.execute(delete(AssetIdentifier).where(AssetIdentifier.asset_id.in_(gone)))
    results = policy_results.evaluate_ids(session, report.stale_results) if report.stale_results else 0
    report.repaired = {"identifiers": len(stale), "policy_results": len(report.stale_results),
                       "orphan_rows": orphans}
    audit.record(session, actor, AuditAction.repair, "system", None,
                 {"identifiers": [None, len(stale)], "policy_results": [None, len(report.stale_results)],
                  "orphan_derived_rows": [None, orphans]},
                 message=(f"validate --repair: identifiers of {len(stale)} asset(s) rewritten, policy results of "
                          f"{len(report.stale_results)} asset(s) re-evaluated ({results} row(s) written), "
                          f"{orphans} orphan derived row(s) removed"))
    session.commit()

