"""A small server-side SVG chart of a lesion over time (no JavaScript library).

Probability of melanoma (left axis, 0-100 %, solid line) and TDS (right axis, 0-10,
dashed line), one point per analysis in time order, with the model's thresholds as
faint horizontal lines. Colours come from CSS classes (``static/css/app.css``).
"""

from __future__ import annotations

from typing import Sequence

from markupsafe import Markup, escape

from melascan.web import db
from melascan.web.i18n import t

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 48, 16, 40
TDS_MAX = 10.0


def _x(i: int, n: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (span / 2 if n == 1 else span * i / (n - 1))


def _y(fraction: float) -> float:
    fraction = min(max(fraction, 0.0), 1.0)
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - fraction)


def _polyline(points: list[tuple[float, float]], css: str) -> str:
    if not points:
        return ""
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dots = "".join(f'<circle class="{css}-dot" cx="{x:.1f}" cy="{y:.1f}" r="4"/>' for x, y in points)
    return f'<polyline class="{css}" fill="none" points="{coords}"/>{dots}'


def timeline_svg(analyses: Sequence[db.Analysis]) -> Markup:
    """The chart for ``analyses`` (any order; drawn oldest first) as inline SVG markup."""
    rows = sorted(analyses, key=lambda a: a.created_at)
    n = len(rows)
    parts = [
        '<div class="chart-scroll">'
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(t("chart.label"))}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for pct in (0, 25, 50, 75, 100):  # grid and axes labels
        y = _y(pct / 100)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{pct}%</text>')
        parts.append(
            f'<text class="axis" x="{WIDTH - RIGHT + 6}" y="{y + 4:.1f}">{TDS_MAX * pct / 100:g}</text>'
        )
    if rows:
        thresholds = rows[-1].result.get("model", {}).get("thresholds", {})
        for name, value in sorted(thresholds.items(), key=lambda kv: kv[1]):
            y = _y(float(value))
            parts.append(f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
            label = f"{t('threshold.' + name)} {100 * float(value):.0f}%"
            parts.append(f'<text class="threshold-label" x="{LEFT + 4}" y="{y - 3:.1f}">{escape(label)}</text>')
    prob = [(_x(i, n), _y(a.probability)) for i, a in enumerate(rows)]
    tds = [
        (_x(i, n), _y(float(a.result["lesion"]["tds"]) / TDS_MAX))
        for i, a in enumerate(rows)
        if isinstance((a.result.get("lesion") or {}).get("tds"), (int, float))
    ]
    parts.append(_polyline(tds, "line-tds"))
    parts.append(_polyline(prob, "line-prob"))
    days = [a.created_at.date() for a in rows if a.created_at]
    # dates, or dates with times when two images share a day
    fmt = "%Y-%m-%d" if len(set(days)) == len(days) else "%m-%d %H:%M"
    for i, a in enumerate(rows):
        label = a.created_at.strftime(fmt) if a.created_at else str(i + 1)
        parts.append(
            f'<text class="axis" x="{_x(i, n):.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">{escape(label)}</text>'
        )
    parts.append(
        f'<text class="legend legend-prob" x="{LEFT}" y="{HEIGHT - 6}">— {escape(t("chart.probability"))}</text>'
        f'<text class="legend legend-tds" x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end">'
        f'- - {escape(t("chart.tds"))}</text></svg></div>'
    )
    return Markup("".join(parts))
