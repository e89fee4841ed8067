"""Charts drawn on the server as SVG: a title, a description, and nothing computed (the
figures come from the services; the page shows them again as a table)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from markupsafe import Markup, escape

# Dark enough for 3:1 against white (non-text contrast), told apart by dashes as well.
PALETTE = ("#1f4e9e", "#b3261e", "#2e6b30", "#7a4b00", "#6a1b9a")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2")
_ids = itertools.count(1)


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[Decimal | None]


@dataclass(frozen=True)
class Chart:
    """A line chart of percentages over months."""

    title: str
    description: str
    months: Sequence[str]
    series: Sequence[Series]
    targets: Sequence[tuple[str, Decimal]] = field(default_factory=tuple)
    # months shaded and labelled (first, last, label), e.g. an establishment's first window
    band: tuple[str, str, str] | None = None
    width: int = 720
    height: int = 300


LEFT, RIGHT, TOP, BOTTOM = 48, 32, 40, 36


def meeting_all_targets(
    title: str, description: str, points: Sequence[Any], width: int = 720, height: int = 300
) -> Chart:
    """The share of the establishments meeting all five targets, month by month, from the
    points of a dashboards' monthly series."""
    return Chart(
        title=title,
        description=description,
        months=[p.month for p in points],
        series=[Series("Cinq cibles atteintes", [p.share_meeting_all_targets for p in points])],
        width=width,
        height=height,
    )


def _top(chart: Chart) -> Decimal:
    values = [v for s in chart.series for v in s.values if v is not None]
    highest = max([Decimal(100), *values])
    return Decimal(((int(highest) + 24) // 25) * 25)


def svg(chart: Chart) -> Markup:
    uid = f"chart{next(_ids)}"
    width, height = chart.width, chart.height
    inner_w, inner_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    top = _top(chart)
    count = max(1, len(chart.months))
    step = inner_w / max(1, count - 1) if count > 1 else 0

    def x(index: int) -> float:
        return LEFT + (index * step if count > 1 else inner_w / 2)

    def y(value: Decimal) -> float:
        return TOP + inner_h - float(value / top) * inner_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'class="chart" role="img" aria-labelledby="{uid}-t {uid}-d">',
        f'<title id="{uid}-t">{escape(chart.title)}</title>',
        f'<desc id="{uid}-d">{escape(chart.description)}</desc>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    if chart.band and chart.months:
        first, last, label = chart.band
        if first in chart.months and last in chart.months:
            a, b = chart.months.index(first), chart.months.index(last)
            x0, x1 = (
                x(a) - step / 2 if count > 1 else LEFT,
                x(b) + step / 2 if count > 1 else LEFT + inner_w,
            )
            x0, x1 = max(LEFT, x0), min(LEFT + inner_w, x1)
            parts.append(
                f'<rect x="{x0:.1f}" y="{TOP}" width="{x1 - x0:.1f}" height="{inner_h}" '
                f'fill="#e8eef8"/>'
                f'<text x="{x0 + 4:.1f}" y="{TOP + inner_h - 6}" font-size="12" fill="#1b1b1b">'
                f"{escape(label)}</text>"
            )
    tick = top / 4
    for i in range(5):
        level = tick * i
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + inner_w}" y1="{y(level):.1f}" y2="{y(level):.1f}" '
            f'stroke="#d0d0d0" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y(level) + 4:.1f}" font-size="12" text-anchor="end" '
            f'fill="#1b1b1b">{int(level)} %</text>'
        )
    every = max(1, (count + 11) // 12)
    for index, month in enumerate(chart.months):
        if index % every == 0 or index == count - 1:
            parts.append(
                f'<text x="{x(index):.1f}" y="{TOP + inner_h + 18}" font-size="11" '
                f'text-anchor="middle" fill="#1b1b1b">{escape(month)}</text>'
            )
    for label, target in chart.targets:
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + inner_w}" y1="{y(target):.1f}" y2="{y(target):.1f}" '
            f'stroke="#1b1b1b" stroke-width="1.5" stroke-dasharray="4 4"/>'
            f'<text x="{LEFT + inner_w - 4}" y="{y(target) - 4:.1f}" font-size="12" '
            f'text-anchor="end" fill="#1b1b1b">{escape(label)}</text>'
        )
    legend_x = LEFT
    for i, series in enumerate(chart.series):
        colour, dash = PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        segment: list[str] = []
        segments: list[list[str]] = []
        for index, measured in enumerate(series.values):
            if measured is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x(index):.1f},{y(measured):.1f}")
        if segment:
            segments.append(segment)
        for points in segments:
            if len(points) > 1:
                parts.append(
                    f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"{dash_attr}/>'
                )
            for point in points:
                cx, cy = point.split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>')
        if len(chart.series) > 1 or series.name:
            parts.append(
                f'<line x1="{legend_x}" x2="{legend_x + 18}" y1="14" y2="14" stroke="{colour}" '
                f'stroke-width="2"{dash_attr}/>'
                f'<text x="{legend_x + 22}" y="18" font-size="12" fill="#1b1b1b">'
                f"{escape(series.name)}</text>"
            )
            legend_x += 36 + 7 * len(series.name)
    parts.append("</svg>")
    return Markup("".join(parts))
