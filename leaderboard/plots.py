"""Server-side SVG charts, hand-made (no JavaScript, no plotting library). Every piece of text that
comes from the database is escaped."""
from __future__ import annotations

from markupsafe import Markup, escape

from benchmark.metadata import TaskMetadata

from .ranking import RankedRow, clean_number

__all__ = ["group_chart_svg", "chart_title", "MAX_SERIES"]

MAX_SERIES = 8
PALETTE = ["#0b5cad", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8d6a9f", "#555555"]


def chart_title(meta: TaskMetadata) -> str:
    if meta.name == "planted-features":
        return f"{meta.headline} per tier (group), top submissions"
    return f"{meta.headline} per group, top submissions"


def _f(x: float) -> str:
    return f"{x:.1f}"


def group_chart_svg(rows: list[RankedRow], groups: list[str], meta: TaskMetadata) -> Markup:
    """A dot chart of the headline metric on each group (x) for the first ``MAX_SERIES`` rows, one
    colour per submission, dots joined by lines. Returns "" when there is nothing to draw."""
    metric = meta.headline_metric
    series = []
    for row in rows[:MAX_SERIES]:
        vals = [clean_number(row.groups.get(g, {}).get(meta.headline)) for g in groups]
        if any(v is not None for v in vals):
            series.append((row.submission.name, vals))
    if not series or not groups:
        return Markup("")
    seen = [v for _, vals in series for v in vals if v is not None]
    lo, hi = min(metric.best, metric.worst), max(metric.best, metric.worst)
    if min(seen) < lo or max(seen) > hi or lo == hi:
        lo, hi = min(seen), max(seen)
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
    left, top, plot_w, plot_h = 56, 28, max(320, 70 * len(groups)), 220
    legend_h = 18 * len(series)
    width, height = left + plot_w + 20, top + plot_h + 40 + legend_h

    def x(i: int) -> float:
        return left + plot_w * (i + 0.5) / len(groups)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    title = chart_title(meta)
    arrow = "higher is better" if metric.higher_is_better else "lower is better"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" aria-labelledby="chart-title">',
           f'<title id="chart-title">{escape(title)} ({arrow})</title>',
           f'<text x="{left}" y="16" class="chart-title">{escape(meta.headline)} ({arrow})</text>']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{_f(y(v))}" y2="{_f(y(v))}" class="grid"/>')
        out.append(f'<text x="{left - 6}" y="{_f(y(v) + 4)}" text-anchor="end" class="tick">{v:.2f}</text>')
    for i, g in enumerate(groups):
        out.append(f'<text x="{_f(x(i))}" y="{top + plot_h + 18}" text-anchor="middle" class="tick">{escape(g)}</text>')
    for s, (name, vals) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        points = [(x(i), y(v), v, groups[i]) for i, v in enumerate(vals) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{_f(px)},{_f(py)}" for px, py, _, _ in points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5" opacity=".6"/>')
        for px, py, v, g in points:
            out.append(f'<circle cx="{_f(px)}" cy="{_f(py)}" r="4" fill="{colour}">'
                       f'<title>{escape(name)} · {escape(g)}: {v:.3f}</title></circle>')
        ly = top + plot_h + 40 + 18 * s
        out.append(f'<circle cx="{left + 6}" cy="{ly - 4}" r="5" fill="{colour}"/>'
                   f'<text x="{left + 18}" y="{ly}" class="legend">{escape(name)}</text>')
    out.append("</svg>")
    return Markup("\n".join(out))
