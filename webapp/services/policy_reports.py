"""What the policy pages, the dashboard and the API read (SPEC §12): counts per control and
framework, one asset's results, and a framework's compliance report. Everything reads the stored
`policy_results` (kept current by `services/policy_results.py`), never re-runs a check.

Compliance is pass ÷ (pass + fail): unknown and excepted results are counted and shown, but
neither helps nor hurts it.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp import policy
from webapp.models import Asset, PolicyException, PolicyResult, PolicySnapshot, PolicyStatus
from webapp.models.base import utcnow
from webapp.services import cached_counts, listing
from webapp.services.errors import NotFound
from webapp.services.export_columns import formula_safe

STATUSES = tuple(s.value for s in PolicyStatus)  # pass fail unknown excepted
REPORT_ASSETS_SHOWN = 500  # failing assets listed per control on the printable page


@dataclass
class Counts:
    """Results by status; compliance = pass ÷ (pass + fail), None when neither."""

    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))

    def add(self, other: Counts) -> None:
        for status, n in other.by_status.items():
            self.by_status[status] += n

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def compliance(self) -> float | None:
        decided = self.by_status["pass"] + self.by_status["fail"]
        return self.by_status["pass"] / decided if decided else None

    def __getitem__(self, status: str) -> int:
        return self.by_status[status]


@dataclass
class ControlSummary:
    control: policy.Control
    counts: Counts


@dataclass
class FrameworkSummary:
    framework: policy.Framework
    controls: list[ControlSummary]
    counts: Counts


def control_counts(session: Session) -> dict[str, Counts]:
    """Every registered control's results by status (one grouped query over the index)."""
    found = {control_id: Counts() for control_id in policy.CONTROLS}
    for control_id, status, n in session.execute(
        select(PolicyResult.control_id, PolicyResult.status, func.count())
        .group_by(PolicyResult.control_id, PolicyResult.status)
    ).tuples():
        if control_id in found:
            found[control_id].by_status[PolicyStatus(status).value] = n
    return found


def cached_control_counts(session: Session) -> dict[str, Counts]:
    """`control_counts` from the counts cache, until a commit writes policy results (see
    `cached_counts`): what the dashboard and `/policy` show."""
    stored = cached_counts.read("policy_counts", ("policy_results",), lambda: {
        control_id: dict(c.by_status) for control_id, c in control_counts(session).items()})
    found = {control_id: Counts() for control_id in policy.CONTROLS}
    for control_id, by_status in stored.items():
        if control_id in found:
            found[control_id].by_status.update(by_status)
    return found


def frameworks(session: Session, counts: dict[str, Counts] | None = None) -> list[FrameworkSummary]:
    """Each framework with the controls that cite it and their counts (a control cited by two
    frameworks counts in both)."""
    counts = counts if counts is not None else control_counts(session)
    summaries = []
    for framework in policy.FRAMEWORKS.values():
        controls = [ControlSummary(c, counts[c.id]) for c in policy.controls_for(framework.id)]
        total = Counts()
        for summary in controls:
            total.add(summary.counts)
        summaries.append(FrameworkSummary(framework, controls, total))
    return summaries


def most_failed(counts: dict[str, Counts], limit: int = 10) -> list[ControlSummary]:
    """The controls with the most failing assets, most first (ties by registry order)."""
    ranked = sorted((ControlSummary(policy.CONTROLS[cid], c) for cid, c in counts.items() if c["fail"]),
                    key=lambda s: -s.counts["fail"])
    return ranked[:limit]


def get_framework(framework_id: str) -> policy.Framework:
    framework = policy.FRAMEWORKS.get(framework_id)
    if framework is None:
        raise NotFound("No such framework.")
    return framework


def get_control(control_id: str) -> policy.Control:
    control = policy.CONTROLS.get(control_id)
    if control is None:
        raise NotFound("No such policy control.")
    return control


# --- one asset ------------------------------------------------------------------------------

@dataclass
class AssetControl:
    control: policy.Control
    result: PolicyResult | None  # None: not evaluated yet
    exception: PolicyException | None


@dataclass
class AssetPolicy:
    applicable: list[AssetControl]
    not_applicable: list[policy.Control]

    @property
    def counts(self) -> Counts:
        counts = Counts()
        for row in self.applicable:
            if row.result is not None:
                counts.by_status[row.result.status.value] += 1
        return counts


SEVERITY_RANK = {s.value: i for i, s in enumerate(reversed(list(policy.Severity)))}
STATUS_RANK = {"fail": 0, "unknown": 1, "excepted": 2, "pass": 3}


def asset_policy(session: Session, asset: Asset, *, now: datetime | None = None) -> AssetPolicy:
    """The asset's stored results, with live exceptions, failures first then by severity;
    and the controls that do not apply to it (two queries)."""
    now = now or utcnow()
    results = {r.control_id: r for r in session.scalars(
        select(PolicyResult).where(PolicyResult.asset_id == asset.id))}
    exceptions: dict[str, PolicyException] = {}
    for exception in session.scalars(
        select(PolicyException).where(PolicyException.asset_id == asset.id,
                                      PolicyException.expires_at > now)
        .order_by(PolicyException.expires_at)
    ):
        exceptions[exception.control_id] = exception
    facts = policy.AssetFacts.from_asset(asset)
    applicable, not_applicable = [], []
    for control in policy.CONTROLS.values():
        if control.applies_to(facts):
            applicable.append(AssetControl(control, results.get(control.id), exceptions.get(control.id)))
        else:
            not_applicable.append(control)
    applicable.sort(key=lambda row: (
        STATUS_RANK.get(row.result.status.value, 1) if row.result else 1,
        SEVERITY_RANK[row.control.severity.value]))
    return AssetPolicy(applicable, not_applicable)


# --- a framework's report -------------------------------------------------------------------

@dataclass
class ReportRow:
    asset_id: uuid.UUID
    name: str
    environment: str
    status: str
    reason: str
    exception_reason: str | None
    expires_at: datetime | None


def report_rows(session: Session, control_id: str, *, limit: int | None = None) -> Iterator[ReportRow]:
    """The assets failing (or excepted from) a control, by name, with the live exception's
    reason and expiry: one query, streamed."""
    now = utcnow()
    live = (select(PolicyException.asset_id, PolicyException.reason, PolicyException.expires_at)
            .where(PolicyException.control_id == control_id, PolicyException.expires_at > now)
            .subquery())
    stmt = (
        select(Asset.id, Asset.name, Asset.environment, PolicyResult.status, PolicyResult.reason,
               live.c.reason, live.c.expires_at)
        .join(PolicyResult, PolicyResult.asset_id == Asset.id)
        .outerjoin(live, live.c.asset_id == Asset.id)
        .where(PolicyResult.control_id == control_id,
               PolicyResult.status.in_([PolicyStatus.fail, PolicyStatus.excepted]))
        .order_by(PolicyResult.status, Asset.name, Asset.id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    for row in session.execute(stmt.execution_options(yield_per=2_000)):
        yield ReportRow(row[0], row[1], row[2].value, PolicyStatus(row[3]).value, row[4], row[5], row[6])


CSV_COLUMNS = ("framework", "references", "control_id", "control", "severity", "asset_id",
               "asset", "environment", "status", "reason", "exception_reason", "exception_expires_at")


def report_csv(session: Session, framework_id: str) -> Iterator[bytes]:
    """The framework's report as CSV (UTF-8 with a byte-order mark): one row per failing or
    excepted asset and control, formula-safe, streamed."""
    framework = get_framework(framework_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield "\ufeff".encode() + _drain(buffer)
    for control in policy.controls_for(framework.id):
        refs = "; ".join(control.references[framework.id])
        for row in report_rows(session, control.id):
            writer.writerow([
                framework.title, refs, control.id, control.title, control.severity.value,
                row.asset_id, formula_safe(row.name), row.environment, row.status,
                formula_safe(row.reason), formula_safe(row.exception_reason or ""),
                row.expires_at.isoformat() if row.expires_at else "",
            ])
            if buffer.tell() > 64_000:
                yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return data


def parameters_view(stored: dict[str, Any]) -> list[dict[str, Any]]:
    """Every control's parameters with their current values, for the settings form and the
    API: [{control, name, value, default, allowed, help}]."""
    rows = []
    for control in policy.CONTROLS.values():
        for p in control.parameters:
            rows.append({"control": control.id, "name": p.name,
                         "value": (stored.get(control.id) or {}).get(p.name, p.default),
                         "default": p.default, "allowed": p.allowed, "help": p.help})
    return rows


# --- results, paged (the API) ----------------------------------------------------------------

@dataclass(frozen=True)
class ResultRow:
    asset_id: uuid.UUID
    asset_name: str
    control_id: str
    status: str
    reason: str
    evaluated_at: datetime


def results_page(session: Session, *, control_id: str | None = None, status: str | None = None,
                 limit: int = 50, cursor: str | None = None) -> listing.Page[ResultRow]:
    """Stored results in (asset id, control id) order, filtered by control and status, one
    keyset page at a time. A bad cursor is a 422 naming it."""
    if control_id is not None:
        get_control(control_id)
    position = listing.decode_cursor(cursor, listing.ID, listing.TEXT) if cursor else None
    stmt = (select(PolicyResult.asset_id, Asset.name, PolicyResult.control_id, PolicyResult.status,
                   PolicyResult.reason, PolicyResult.evaluated_at)
            .join(Asset, Asset.id == PolicyResult.asset_id))
    if control_id is not None:
        stmt = stmt.where(PolicyResult.control_id == control_id)
    if status is not None:
        stmt = stmt.where(PolicyResult.status == PolicyStatus(status))
    stmt = listing.keyset(stmt, [PolicyResult.asset_id, PolicyResult.control_id], descending=False,
                          limit=limit, position=position)
    rows = [ResultRow(a, name, c, PolicyStatus(s).value, reason, when)
            for a, name, c, s, reason, when in session.execute(stmt).tuples()]
    return listing.page(rows, limit=limit, key=lambda r: (r.asset_id, r.control_id))


# --- the daily snapshot (the dashboard's trend) ----------------------------------------------

TREND_DAYS = 90


def take_snapshot(session: Session, *, now: datetime | None = None) -> PolicySnapshot:
    """Write (or rewrite) today's posture: live assets, results by status and each framework's
    counts. Committed."""
    now = now or utcnow()
    counts = control_counts(session)
    total = Counts()
    for c in counts.values():
        total.add(c)
    row = session.get(PolicySnapshot, now.date()) or PolicySnapshot(day=now.date())
    row.assets = session.scalar(select(func.count()).select_from(Asset)
                                .where(Asset.deleted_at.is_(None))) or 0
    row.counts = dict(total.by_status)
    row.frameworks = {f.framework.id: dict(f.counts.by_status) for f in frameworks(session, counts)}
    row.taken_at = now
    session.add(row)
    session.commit()
    return row


def trend(session: Session, *, days: int = TREND_DAYS, now: datetime | None = None) -> list[PolicySnapshot]:
    """The snapshots of the last `days` days, oldest first."""
    since = (now or utcnow()).date() - timedelta(days=days - 1)
    return list(session.scalars(select(PolicySnapshot).where(PolicySnapshot.day >= since)
                                .order_by(PolicySnapshot.day)))
