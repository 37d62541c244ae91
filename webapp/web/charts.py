"""Charts, described as data: what `chart_panel` (templates/_macros/charts.html) renders as a
table (the accessible source of truth, and what a page without JavaScript shows) and what
static/js/charts.js draws from that same table with the vendored Chart.js.

A chart is a title, a kind, and one or more series of points; each point is a label, a value,
the link to the list behind that value, and a colour (the name of one of app.css's custom
properties, so the drawing, the table's swatches and the rest of the app agree).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# bar: vertical bars; hbar: horizontal bars (long labels, many groups); doughnut: parts of a
# whole; line: a trend over time (several series share the labels, e.g. days)
KINDS = ("bar", "hbar", "doughnut", "line")


@dataclass(frozen=True)
class Point:
    label: str
    value: int | float
    href: str | None = None  # the list behind the number, e.g. /assets?engine=mysql
    colour: str | None = None  # an app.css custom property, e.g. "--env-production"

    @property
    def text(self) -> str:
        """The value as the table shows it: 1,234 or 97.5."""
        return _number(self.value)


@dataclass(frozen=True)
class Series:
    name: str  # the table's column heading, e.g. "Assets" or "Compliance"
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Row:
    """One line of the table: a label and its point in each series."""

    label: str
    colour: str | None
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Chart:
    id: str  # unique on the page: the figure is `chart-<id>`
    title: str
    kind: str
    label_header: str  # the table's first column heading, e.g. "Engine"
    series: tuple[Series, ...]
    empty: str = "Nothing to show yet."
    unit: str = ""  # after each value in the tooltip and table, e.g. "%"
    max_value: float | None = None  # a fixed top of the value axis, e.g. 100 for percentages

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"chart kind {self.kind!r} is not one of {', '.join(KINDS)}")
        lengths = {len(s.points) for s in self.series}
        if len(lengths) > 1:
            raise ValueError("every series of a chart has the same labels")

    @property
    def rows(self) -> list[Row]:
        if not self.series:
            return []
        first = self.series[0].points
        return [Row(p.label, p.colour, tuple(s.points[i] for s in self.series))
                for i, p in enumerate(first)]

    @property
    def is_empty(self) -> bool:
        return not any(p.value for s in self.series for p in s.points)

    @property
    def summary(self) -> str:
        """One sentence a screen reader hears before the table, e.g. "3 groups; most: mysql
        (12)"."""
        rows = self.rows
        if len(self.series) != 1 or not rows or self.kind == "line":
            return f"{len(rows)} rows"
        top = max(rows, key=lambda r: r.points[0].value)
        return (f"{len(rows)} group{'s' if len(rows) != 1 else ''}; most: {top.label} "
                f"({_number(top.points[0].value)}{self.unit})")


def _number(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def single(id: str, title: str, kind: str, label_header: str, points: Iterable[Point], *,
           value_header: str = "Assets", **options: object) -> Chart:
    """A chart of one series (counts by engine, the most failed controls ...)."""
    return Chart(id=id, title=title, kind=kind, label_header=label_header,
                 series=(Series(value_header, tuple(points)),), **options)  # type: ignore[arg-type]


def several(id: str, title: str, kind: str, label_header: str, labels: Sequence[str],
            series: dict[str, Sequence[int | float]], **options: object) -> Chart:
    """A chart of several series over the same labels (a trend: assets and compliance per day),
    without links or colours per point."""
    return Chart(id=id, title=title, kind=kind, label_header=label_header,
                 series=tuple(Series(name, tuple(Point(label, v) for label, v in zip(labels, values, strict=True)))
                              for name, values in series.items()),
                 **options)  # type: ignore[arg-type]
