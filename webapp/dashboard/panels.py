"""The dashboard's charts, built from the counts of services.reports: each bar or segment links
to `/assets` filtered to the assets it counts."""

from __future__ import annotations

from flask import url_for

from webapp.services.reports import Dashboard
from webapp.web.charts import Chart, Point, single

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
