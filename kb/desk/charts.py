"""Small server-rendered SVG charts for the desk: lines over time, stacked bars, sparklines.

No script and nothing fetched: each chart is inline SVG with role="img", a <title> and a
<desc>, and tells its series apart without colour (dash patterns and marker shapes on
lines, fill patterns on bars, every series named in the chart). Colours come from CSS
classes in desk.css; without that sheet everything is drawn in currentColor. Pages put
the same numbers in a table next to each chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 240
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 44, 150, 12, 28
MAX_X_LABELS = 7
LABEL_GAP = 14
MAX_MARKERS = 62  # beyond this many points markers crowd the line: dashes and labels still tell series apart
DASHES = ["", "6 4", "2 3", "10 3 2 3"]
MARKERS = ["circle", "square", "triangle", "diamond"]
PATTERNS = ["solid", "hatch", "dots", "cross"]


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[int]


def line_chart(ident: str, title: str, description: str, labels: Sequence[str], series: Sequence[Series]) -> SafeString:
    """Lines over a shared x axis (`labels`, e.g. days), each series named at its last point."""
    plot = _Plot(labels, series)
    parts = [plot.axes()]
    ends = []
    for n, one in enumerate(series):
        points = [(plot.x(i), plot.y(v)) for i, v in enumerate(one.values)]
        if not points:
            continue
        style = f'class="chart-series chart-series-{n}" fill="none" stroke="currentColor" stroke-width="2"'
        dash = DASHES[n % len(DASHES)]
        if dash:
            style += f' stroke-dasharray="{dash}"'
        parts.append(f'<polyline {style} points="{_points(points)}"/>')
        if len(points) <= MAX_MARKERS:
            parts.extend(_marker(MARKERS[n % len(MARKERS)], x, y, n) for x, y in points)
        ends.append((points[-1][1], n, one))
    # Each line named in the right margin level with its last point, nudged apart where they meet.
    floor = 0.0
    for y, n, one in sorted(ends, key=lambda end: end[0]):
        y = max(y + 4, floor)
        floor = y + LABEL_GAP
        parts.append(f'{_marker(MARKERS[n % len(MARKERS)], WIDTH - MARGIN_RIGHT + 10, y - 4, n)}'
                     f'<text class="chart-label" x="{WIDTH - MARGIN_RIGHT + 18}" y="{y:.1f}">{escape(one.label)}</text>')
    return _svg(ident, title, description, plot.empty, parts)


def stacked_bars(ident: str, title: str, description: str, labels: Sequence[str], series: Sequence[Series]) -> SafeString:
    """One bar per label, stacked by series, each series filled with its own pattern and named in a legend."""
    plot = _Plot(labels, series, stacked=True)
    parts = [_pattern_defs(ident, len(series)), plot.axes()]
    bar = max(2.0, min(40.0, plot.step * 0.6))
    for i in range(len(labels)):
        base = 0
        for n, one in enumerate(series):
            value = one.values[i]
            if value:
                top, bottom = plot.y(base + value), plot.y(base)
                parts.append(
                    f'<rect class="chart-series chart-series-{n}" x="{plot.x(i) - bar / 2:.1f}" y="{top:.1f}" '
                    f'width="{bar:.1f}" height="{bottom - top:.1f}" fill="url(#{ident}-{PATTERNS[n % len(PATTERNS)]})" '
                    f'stroke="currentColor" stroke-width="1"><title>{escape(labels[i])}: {escape(one.label)} {value}'
                    f'</title></rect>'
                )
            base += value
    for n, one in enumerate(series):  # the legend, right of the plot, with the bars' own patterns
        y = MARGIN_TOP + 8 + n * 22
        x = WIDTH - MARGIN_RIGHT + 12
        parts.append(
            f'<rect class="chart-series chart-series-{n}" x="{x}" y="{y}" width="14" height="14" '
            f'fill="url(#{ident}-{PATTERNS[n % len(PATTERNS)]})" stroke="currentColor"/>'
            f'<text class="chart-label" x="{x + 20}" y="{y + 11}">{escape(one.label)} ({sum(one.values)})</text>'
        )
    return _svg(ident, title, description, plot.empty, parts)


def sparkline(title: str, values: Sequence[int], *, width: int = 120, height: int = 24) -> SafeString:
    """A tiny line of `values` (say, per day), its highest point marked; named by `title`."""
    peak = max(values, default=0)
    parts = [f'<title>{escape(title)}</title>']
    if values:
        step = (width - 4) / max(len(values) - 1, 1)
        y = [height - 2 - (v / peak * (height - 4) if peak else 0) for v in values]
        points = [(2 + i * step if len(values) > 1 else width / 2, y[i]) for i in range(len(values))]
        parts.append(f'<polyline class="chart-series chart-series-0" fill="none" stroke="currentColor" '
                     f'stroke-width="1.5" points="{_points(points)}"/>')
        top = values.index(peak)
        parts.append(f'<circle cx="{points[top][0]:.1f}" cy="{points[top][1]:.1f}" r="2" fill="currentColor"/>')
    # Safe: the only text is the escaped title; everything else is numbers formatted here.
    return mark_safe(
        f'<svg class="chart-sparkline" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


class _Plot:
    """Scales and axes shared by the charts: counts up from 0, labels spread evenly."""

    def __init__(self, labels: Sequence[str], series: Sequence[Series], *, stacked: bool = False) -> None:
        self.labels = list(labels)
        columns = list(zip(*(s.values for s in series))) if series else []
        peak = max((sum(c) if stacked else max(c) for c in columns), default=0)
        self.empty = peak == 0
        self.top = _nice(peak)
        self.width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
        self.height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
        self.step = self.width / max(len(self.labels), 1)

    def x(self, index: int) -> float:
        return MARGIN_LEFT + self.step * (index + 0.5)

    def y(self, value: float) -> float:
        return MARGIN_TOP + self.height * (1 - value / self.top)

    def axes(self) -> str:
        bottom, right = HEIGHT - MARGIN_BOTTOM, WIDTH - MARGIN_RIGHT
        parts = [f'<g class="chart-axis" stroke="currentColor" stroke-width="1">'
                 f'<line x1="{MARGIN_LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}"/>'
                 f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP}" x2="{MARGIN_LEFT}" y2="{bottom}"/></g>']
        for tick in (0, self.top // 2, self.top) if self.top > 1 else (0, self.top):
            y = self.y(tick)
            parts.append(f'<line class="chart-grid" x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" '
                         f'stroke="currentColor" stroke-opacity="0.2"/>'
                         f'<text class="chart-tick" x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
        every = max(1, math.ceil(len(self.labels) / MAX_X_LABELS))
        for i in range(0, len(self.labels), every):
            parts.append(f'<text class="chart-tick" x="{self.x(i):.1f}" y="{bottom + 18}" text-anchor="middle">'
                         f'{escape(self.labels[i])}</text>')
        if self.empty:
            parts.append(f'<text class="chart-empty" x="{MARGIN_LEFT + self.width / 2:.1f}" '
                         f'y="{MARGIN_TOP + self.height / 2:.1f}" text-anchor="middle">No data in this period</text>')
        return "".join(parts)


def _svg(ident: str, title: str, description: str, empty: bool, parts: list[str]) -> SafeString:
    if empty:
        description = f"{description} No data in this period."
    # Safe: every piece of text in `parts` and here went through escape(); the rest are
    # numbers and fixed names formatted in this module.
    return mark_safe(
        f'<svg class="chart" role="img" aria-labelledby="{ident}-title {ident}-desc" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="12">'
        f'<title id="{ident}-title">{escape(title)}</title><desc id="{ident}-desc">{escape(description)}</desc>'
        f'{"".join(parts)}</svg>'
    )


def _pattern_defs(ident: str, count: int) -> str:
    shapes = {
        "solid": '<rect width="8" height="8" fill="currentColor" fill-opacity="0.85"/>',
        "hatch": '<path d="M-2,2 l4,-4 M0,8 l8,-8 M6,10 l4,-4" stroke="currentColor" stroke-width="1.5"/>',
        "dots": '<circle cx="4" cy="4" r="1.6" fill="currentColor"/>',
        "cross": '<path d="M0,0 L8,8 M8,0 L0,8" stroke="currentColor" stroke-width="1"/>',
    }
    return "<defs>" + "".join(
        f'<pattern id="{ident}-{name}" class="chart-pattern" width="8" height="8" patternUnits="userSpaceOnUse">'
        f"{shapes[name]}</pattern>"
        for name in PATTERNS[:count]
    ) + "</defs>"


def _marker(shape: str, x: float, y: float, n: int) -> str:
    cls = f'class="chart-series chart-series-{n}" fill="currentColor"'
    if shape == "circle":
        return f'<circle {cls} cx="{x:.1f}" cy="{y:.1f}" r="3"/>'
    if shape == "square":
        return f'<rect {cls} x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6"/>'
    if shape == "triangle":
        return f'<path {cls} d="M{x:.1f},{y - 4:.1f} l4,7 h-8 z"/>'
    return f'<path {cls} d="M{x:.1f},{y - 4:.1f} l4,4 l-4,4 l-4,-4 z"/>'


def _points(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def _nice(peak: int) -> int:
    """The axis top: the peak rounded up to 1, 2 or 5 times a power of ten (1 when empty)."""
    if peak <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(peak))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= peak)
