"""Server-side SVG charts (no JavaScript, no plotting library): the geometry is computed here, the
markup is the template leaderboard/templates/_charts.html, whose autoescaping covers every piece
of text that comes from the database.

Two kinds: the per-group dot chart of the headline (every task), and the scatter plots a task
declares in ``TaskMetadata.plots`` (:class:`benchmark.metadata.PlotSpec`), drawn from the
per-instance details and metrics of the submissions shown. Nothing here depends on which task it
draws: titles and labels come from the task's metadata.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flask import render_template
from markupsafe import Markup

from benchmark.metadata import PlotSpec, TaskMetadata
from evaluator.results.board import MAX_PLOT_SERIES, TOP_PLOTTED, PlottedRow, plot_rows
from evaluator.results.summary import clean_number

from . import db


__all__ = [
    "MAX_PLOT_SERIES",
    "MAX_SERIES",
    "TOP_PLOTTED",
    "PlotData",
    "PlotPoint",
    "PlotSeries",
    "Chart",
    "axis_ticks",
    "build_plot",
    "chart_title",
    "group_chart",
    "plot_rows",
    "plot_summary",
    "render_chart",
    "scatter_chart",
]

MAX_SERIES = 8
PALETTE = ["#0b5cad", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8d6a9f", "#555555"]


def chart_title(meta: TaskMetadata) -> str:
    return f"{meta.headline} per {meta.group_label}, top submissions"


@dataclass(frozen=True)
class Tick:
    at: float           # position on the canvas along its axis
    label: str
    major: bool = True


@dataclass(frozen=True)
class Mark:
    x: float
    y: float
    tip: str            # the point's tooltip (plain text; the template escapes it)


@dataclass
class ChartSeries:
    name: str
    colour: str
    square: bool        # baselines are squares on scatter plots
    marks: list[Mark]
    line: list[tuple[float, float]]   # a polyline through the marks (the group chart), or empty
    legend_y: float
    legend: str


@dataclass
class Chart:
    """Everything a chart's markup needs, in canvas units: the template only places it."""
    kind: str                          # "group" or "scatter"
    id: str
    width: float
    height: float
    left: float
    top: float
    plot_w: float
    plot_h: float
    title: str                         # the accessible title
    heading: str                       # the text drawn above the plot
    desc: str = ""
    data_plot: str | None = None       # the declared plot's name (scatter)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_label: str = ""
    y_label: str = ""
    diagonal: list[tuple[float, float]] = field(default_factory=list)
    series: list[ChartSeries] = field(default_factory=list)


def render_chart(chart: Chart | None) -> Markup:
    """The chart as inline SVG (``""`` for None), from leaderboard/templates/_charts.html."""
    if chart is None:
        return Markup("")
    # The markup is a function of the chart alone, whose repr spells out every field: a board
    # rebuilt after a new result draws the same charts again unless the newcomer is on them.
    return db.cache().get_or_compute(("chart-svg", repr(chart)),
                                     lambda: Markup(render_template("chart.svg", chart=chart)))


def group_chart(rows: list[Any], groups: list[str], meta: TaskMetadata) -> Chart | None:
    """A dot chart of the headline metric on each group (x) for the first ``MAX_SERIES`` rows, one
    colour per submission, dots joined by lines. None when there is nothing to draw."""
    metric = meta.headline_metric
    series = []
    for row in rows[:MAX_SERIES]:
        vals = [clean_number(row.groups.get(g, {}).get(meta.headline)) for g in groups]
        if any(v is not None for v in vals):
            series.append((row.submission.name, vals))
    if not series or not groups:
        return None
    seen = [v for _, vals in series for v in vals if v is not None]
    lo, hi = min(metric.best, metric.worst), max(metric.best, metric.worst)
    if min(seen) < lo or max(seen) > hi or lo == hi:
        lo, hi = min(seen), max(seen)
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
    left, top, plot_w, plot_h = 56, 28, max(320, 70 * len(groups)), 220
    legend_h = 18 * len(series)

    def x(i: int) -> float:
        return left + plot_w * (i + 0.5) / len(groups)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    arrow = "higher is better" if metric.higher_is_better else "lower is better"
    chart = Chart("group", "chart", left + plot_w + 20, top + plot_h + 40 + legend_h, left, top, plot_w, plot_h,
                  title=f"{chart_title(meta)} ({arrow})", heading=f"{meta.headline} ({arrow})")
    chart.y_ticks = [Tick(y(lo + (hi - lo) * k / 4), f"{lo + (hi - lo) * k / 4:.2f}") for k in range(5)]
    chart.x_ticks = [Tick(x(i), g) for i, g in enumerate(groups)]
    for s, (name, vals) in enumerate(series):
        marks = [Mark(x(i), y(v), f"{name} · {groups[i]}: {v:.3f}") for i, v in enumerate(vals) if v is not None]
        chart.series.append(ChartSeries(name, PALETTE[s % len(PALETTE)], False, marks,
                                        [(m.x, m.y) for m in marks] if len(marks) > 1 else [],
                                        top + plot_h + 40 + 18 * s, name))
    return chart



# --- declared task plots ---------------------------------------------------------------------
_MARKERS = ("circle", "square")  # submissions, baselines


@dataclass(frozen=True)
class PlotPoint:
    instance_id: str
    group: str
    x: float
    y: float


@dataclass
class PlotSeries:
    submission: str
    evaluation_id: int
    baseline: bool
    rank: int | None
    points: list[PlotPoint] = field(default_factory=list)
    skipped: int = 0    # instance results with no plottable value on an axis (failed, missing key, <= 0 on log)

    def to_json(self) -> dict[str, Any]:
        return {"submission": self.submission, "evaluation_id": self.evaluation_id, "baseline": self.baseline,
                "rank": self.rank, "skipped": self.skipped,
                "points": [{"instance_id": p.instance_id, "group": p.group, "x": p.x, "y": p.y} for p in self.points]}


@dataclass
class PlotData:
    spec: PlotSpec
    series: list[PlotSeries]

    @property
    def n_points(self) -> int:
        return sum(len(s.points) for s in self.series)

    @property
    def n_skipped(self) -> int:
        return sum(s.skipped for s in self.series)


def _plottable(value: Any, log: bool) -> float | None:
    f = clean_number(value)
    if f is None or (log and f <= 0):
        return None
    return f


def build_plot(spec: PlotSpec, rows: list[PlottedRow], axes: dict[int, list[dict]]) -> PlotData:
    """Series for ``rows`` from :func:`leaderboard.db.instance_axes` output (keyed by evaluation id)."""
    series = []
    for row in rows:
        s = PlotSeries(row.submission, row.evaluation_id, row.baseline, row.rank)
        for inst in axes.get(row.evaluation_id, []):
            x, y = _plottable(inst.get(spec.x), spec.x_log), _plottable(inst.get(spec.y), spec.y_log)
            if x is None or y is None:
                s.skipped += 1
            else:
                s.points.append(PlotPoint(inst["instance_id"], inst["group"], x, y))
        series.append(s)
    return PlotData(spec, series)


def plot_summary(data: PlotData) -> str:
    """One sentence on what was drawn and what was left out (goes in the caption and <desc>)."""
    spec = data.spec
    text = (f"{data.n_points} instance results of {len(data.series)} submissions: "
            f"{spec.y_label} against {spec.x_label}")
    if data.n_skipped:
        why = "failed or without the value" + (", or not positive on a log axis" if spec.x_log or spec.y_log else "")
        text += f"; {data.n_skipped} not drawn ({why})"
    return text + "."


def _nice_step(span: float, target: int = 5) -> float:
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def axis_ticks(lo: float, hi: float, log: bool) -> tuple[float, float, list[tuple[float, str, bool]]]:
    """(axis low, axis high, [(tick value, label, major)]) covering [lo, hi]. Log axes get a major
    tick at each power of ten (minor ones at 2 and 5 times each when they span at most 2.5 decades,
    at every integer multiple within about one decade); linear axes about five ticks at 1, 2 or 5 times a power of ten."""
    if log:
        # the data's span plus a margin, not padded out to whole decades (that can leave most of
        # the plot empty); every decade inside gets a major tick
        l_lo, l_hi = math.log10(lo), math.log10(hi)
        pad = max(0.05 * (l_hi - l_lo), 0.1)
        l_lo, l_hi = l_lo - pad, l_hi + pad
        ticks = [(10.0 ** k, _fmt_tick(10.0 ** k), True) for k in range(math.ceil(l_lo), math.floor(l_hi) + 1)]
        span = l_hi - l_lo
        minors = (2, 3, 4, 5, 6, 7, 8, 9) if span <= 1.2 else (2, 5) if span <= 2.5 else ()
        ticks += [(m * 10.0 ** k, _fmt_tick(m * 10.0 ** k), False)
                  for k in range(math.floor(l_lo), math.ceil(l_hi)) for m in minors
                  if l_lo <= math.log10(m) + k <= l_hi]
        return 10.0 ** l_lo, 10.0 ** l_hi, sorted(ticks)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    step = _nice_step(hi - lo)
    a, b = math.floor(lo / step) * step, math.ceil(hi / step) * step
    values = np.arange(round((b - a) / step) + 1) * step + a
    return a, b, [(float(v), _fmt_tick(float(v)), True) for v in values]


def _fmt_tick(v: float) -> str:
    v = round(v, 10)
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.0e}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")
    return f"{v:g}"


def scatter_chart(data: PlotData) -> Chart | None:
    """The declared scatter plot: one colour per submission (squares for baselines), log axes with
    decade ticks, the line y = x where declared, a legend, and a tooltip on every point. None when
    no point can be drawn."""
    spec = data.spec
    drawn = [s for s in data.series if s.points]
    if not drawn:
        return None
    xs = [p.x for s in drawn for p in s.points]
    ys = [p.y for s in drawn for p in s.points]
    if spec.diagonal:   # one range for both axes, so that y = x is the true diagonal
        xs = ys = xs + ys
    x_lo, x_hi, x_ticks = axis_ticks(min(xs), max(xs), spec.x_log)
    y_lo, y_hi, y_ticks = axis_ticks(min(ys), max(ys), spec.y_log)
    left, top, plot_w, plot_h = 64, 30, 440, 300
    legend_y0 = top + plot_h + 52

    def tx(v: float) -> float:
        f = (math.log10(v) - math.log10(x_lo)) / (math.log10(x_hi) - math.log10(x_lo)) if spec.x_log \
            else (v - x_lo) / (x_hi - x_lo)
        return left + plot_w * f

    def ty(v: float) -> float:
        f = (math.log10(v) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo)) if spec.y_log \
            else (v - y_lo) / (y_hi - y_lo)
        return top + plot_h * (1 - f)

    # Many points share an x (e.g. a few n/d values): shift each series a little so all stay visible.
    n_distinct_x = len({p.x for s in drawn for p in s.points})
    dodge = 4.0 if n_distinct_x * 2 < len(xs) else 0.0

    def scale(log: bool) -> str:
        return " (log scale)" if log else ""

    desc = (f"Scatter plot. x: {spec.x_label}{scale(spec.x_log)}; y: {spec.y_label}{scale(spec.y_log)}."
            + (" The line y = x marks exact agreement." if spec.diagonal else "") + " " + plot_summary(data))
    chart = Chart("scatter", f"plot-{spec.name}", left + plot_w + 24, legend_y0 + 18 * len(data.series) + 6,
                  left, top, plot_w, plot_h, title=spec.title, heading=spec.title, desc=desc, data_plot=spec.name,
                  x_ticks=[Tick(tx(v), label, major) for v, label, major in x_ticks],
                  y_ticks=[Tick(ty(v), label, major) for v, label, major in y_ticks],
                  x_label=spec.x_label + scale(spec.x_log), y_label=spec.y_label + scale(spec.y_log))
    if spec.diagonal:
        lo, hi = max(x_lo, y_lo), min(x_hi, y_hi)
        grid = np.geomspace(lo, hi, 24) if spec.x_log or spec.y_log else np.linspace(lo, hi, 2)
        chart.diagonal = [(tx(float(v)), ty(float(v))) for v in grid]
    for k, s in enumerate(data.series):
        shift = dodge * (k - (len(data.series) - 1) / 2)
        rank = f"#{s.rank} " if s.rank is not None else ""
        note = f", {s.skipped} not drawn" if s.skipped else ""
        tag = " (baseline)" if s.baseline else ""
        marks = [Mark(tx(p.x) + shift, ty(p.y), f"{s.submission} · {p.instance_id}: x = {p.x:.4g}, y = {p.y:.4g}")
                 for p in s.points]
        chart.series.append(ChartSeries(s.submission, PALETTE[k % len(PALETTE)], s.baseline, marks, [],
                                         legend_y0 + 18 * k,
                                         f"{rank}{s.submission}{tag} ({len(s.points)} points{note})"))
    return chart
