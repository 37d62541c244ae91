"""The dashboard's charts, built from the counts of services.reports: each bar or segment links
to `/assets` filtered to the assets it counts."""

from __future__ import annotations

from flask import url_for

from webapp.models import PolicySnapshot
from webapp.services.policy_reports import ControlSummary, FrameworkSummary
from webapp.services.reports import Dashboard
from webapp.web.charts import Chart, Point, several, single

NOT_SET = "not set"


def _points(rows: list[tuple[str | None, int]], arg: str, colours: str | None) -> list[Point]:
    """One point per group, linked to its list. A value that is not set has no filter to link
    to (only criticality can be unset): its number stays plain text."""
    return [
        Point(
            label=(value or NOT_SET).replace("_", " "),
            value=n,
            href=url_for("assets.index", **{arg: value}) if value else None,
            colour=f"{colours}{value or 'none'}" if colours else None,
        )
        for value, n in rows
    ]


def inventory_charts(summary: Dashboard) -> list[Chart]:
    """Counts by engine, environment, criticality and status."""
    empty = "No assets yet."
    return [
        single("engine", "By engine", "hbar", "Engine",
               _points(summary.by_engine, "engine", "--engine-"), empty=empty),
        single("environment", "By environment", "doughnut", "Environment",
               _points(summary.by_environment, "environment", "--env-"), empty=empty),
        single("criticality", "By criticality", "bar", "Criticality",
               _points(summary.by_criticality, "criticality", "--crit-"), empty=empty),
        single("status", "By status", "hbar", "Status",
               _points(summary.by_status, "status", None), empty=empty),
    ]


def policy_charts(frameworks: list[FrameworkSummary], most_failed: list[ControlSummary],
                  trend: list[PolicySnapshot]) -> list[Chart]:
    """Compliance by framework (each bar opens the framework on /policy), the ten most failed
    controls (each bar opens the failing assets), and assets and compliance over 90 days."""
    if not any(f.counts.total for f in frameworks):
        return []  # no result yet: `flask policy evaluate` has not run
    compliance = single(
        "compliance", "Compliance by framework", "hbar", "Framework",
        [Point(f.framework.title, round(100 * f.counts.compliance, 1),
               href=url_for("compliance.index") + f"#framework-{f.framework.id}")
         for f in frameworks if f.counts.compliance is not None],
        value_header="Compliance", unit="%", max_value=100,
        empty="No control has passed or failed yet.")
    failed = single(
        "most-failed", "Most failed controls", "hbar", "Control",
        [Point(s.control.title, s.counts["fail"],
               href=url_for("assets.index", policy=s.control.id, policy_status="fail"))
         for s in most_failed],
        value_header="Failing assets", empty="No asset fails a control.")
    charts = [compliance, failed]
    if trend:
        days = [s.day.isoformat() for s in trend]
        charts.append(several("trend-assets", "Assets, last 90 days", "line", "Day", days,
                              {"Assets": [s.assets for s in trend]}))
        charts.append(several(
            "trend-compliance", "Compliance, last 90 days", "line", "Day", days,
            {"Compliance": [_compliance(s.counts) for s in trend]}, unit="%", max_value=100))
    return charts


def _compliance(counts: dict[str, int]) -> float:
    decided = counts.get("pass", 0) + counts.get("fail", 0)
    return round(100 * counts.get("pass", 0) / decided, 1) if decided else 0.0
