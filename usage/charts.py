"""Server-rendered SVG charts: no JavaScript, no CDN, readable by screen readers.

Each chart is an <svg role="img"> named by its <title> and described by its <desc>; every
bar carries its own <title> (a tooltip on hover). The page also renders the numbers as a
table, so nothing depends on seeing the picture. Geometry uses floats; every number shown
comes from the integers (money stays integer nano-dollars until formatted).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from billing.history import usd_exact

WIDTH = 720


def usd_label(nanos: int) -> str:
    """An axis or bar label in dollars, exact (a tick of 50,000 nano-dollars is $0.00005)."""
    return "$" + usd_exact(nanos)


def count_label(value: int) -> str:
    return f"{value:,}"


def nice_ticks(maximum: int, target: int = 4) -> list[int]:
    """0 and round steps (1, 2 or 5 times a power of ten) up to at least `maximum`."""
    if maximum <= 0:
        return [0]
    raw = maximum / target
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(int(step), 1)
    count = math.ceil(maximum / step)
    return [i * step for i in range(count + 1)]


def _svg_open(chart_id: str, title: str, desc: str, height: float) -> str:
    return (
        f'<svg class="chart" id="{chart_id}" viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>'
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Column:
    label: str  # the x-axis label (shown for some columns only)
    value: int
    tooltip: str
    overlay: int = 0  # drawn over the column from its base, e.g. the errors among requests


def column_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    columns: Sequence[Column],
    format_value: Callable[[int], str],
    empty_text: str = "Nothing in this range",
) -> SafeString:
    """Vertical bars over time, with a labelled value axis and gridlines."""
    height, left, right, top, bottom = 240, 76, 10, 12, 34
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    ticks = nice_ticks(max((column.value for column in columns), default=0))
    scale = plot_h / (ticks[-1] or 1)
    base = top + plot_h
    parts = [_svg_open(chart_id, title, desc, height)]

    parts.append('<g class="axis y-axis">')
    for tick in ticks:
        y = base - tick * scale
        parts.append(
            f'<line class="grid" x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(format_value(tick))}</text>"
        )
    parts.append("</g>")

    slot = plot_w / max(len(columns), 1)
    every = math.ceil(len(columns) / 8) or 1  # at most about 8 labels: they must not overlap
    parts.append('<g class="columns">')
    for index, column in enumerate(columns):
        x = left + index * slot
        bar_w = max(slot * 0.72, 1)
        bar_x = x + (slot - bar_w) / 2
        bar_h = column.value * scale
        parts.append(
            f"<g><title>{escape(column.tooltip)}</title>"
            f'<rect class="hit" x="{x:.1f}" y="{top}" width="{slot:.1f}" height="{plot_h}"/>'
        )
        if bar_h:
            parts.append(
                f'<rect class="bar" x="{bar_x:.1f}" y="{base - bar_h:.1f}" '
                f'width="{bar_w:.1f}" height="{bar_h:.1f}"/>'
            )
        if column.overlay:
            over_h = column.overlay * scale
            parts.append(
                f'<rect class="bar-overlay" x="{bar_x:.1f}" y="{base - over_h:.1f}" '
                f'width="{bar_w:.1f}" height="{over_h:.1f}"/>'
            )
        parts.append("</g>")
        if index % every == 0:
            parts.append(
                f'<text class="x-label" x="{x + slot / 2:.1f}" y="{base + 20}" '
                f'text-anchor="middle">{escape(column.label)}</text>'
            )
    parts.append("</g>")
    parts.append(
        f'<line class="axis-line" x1="{left}" x2="{WIDTH - right}" y1="{base}" y2="{base}"/>'
        f'<line class="axis-line" x1="{left}" x2="{left}" y1="{top}" y2="{base}"/>'
    )
    if ticks == [0]:
        parts.append(
            f'<text class="empty" x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" '
            f'text-anchor="middle">{escape(empty_text)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  (every text above is escaped)


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    tooltip: str


def bar_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    bars: Sequence[Bar],
    format_value: Callable[[int], str],
    empty_text: str = "Nothing in this range",
) -> SafeString:
    """Horizontal bars, one per row (a model, a key), each with its value at its end."""
    row_h, left, right, top, bottom = 28, 190, 96, 8, 26
    rows = max(len(bars), 1)
    height = top + rows * row_h + bottom
    plot_w = WIDTH - left - right
    ticks = nice_ticks(max((bar.value for bar in bars), default=0))
    scale = plot_w / (ticks[-1] or 1)
    base = top + rows * row_h
    parts = [_svg_open(chart_id, title, desc, height)]

    parts.append('<g class="axis x-axis">')
    for tick in ticks:
        x = left + tick * scale
        parts.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{base}"/>'
            f'<text x="{x:.1f}" y="{base + 18}" text-anchor="middle">'
            f"{escape(format_value(tick))}</text>"
        )
    parts.append("</g>")

    parts.append('<g class="bars">')
    for index, bar in enumerate(bars):
        y = top + index * row_h
        bar_w = bar.value * scale
        parts.append(
            f"<g><title>{escape(bar.tooltip)}</title>"
            f'<text class="y-label" x="{left - 8}" y="{y + row_h / 2 + 4:.1f}" '
            f'text-anchor="end">{escape(_shorten(bar.label, 24))}</text>'
        )
        if bar_w:
            parts.append(
                f'<rect class="bar" x="{left}" y="{y + 5}" width="{bar_w:.1f}" '
                f'height="{row_h - 10}" rx="2"/>'
            )
        parts.append(
            f'<text class="value" x="{left + bar_w + 6:.1f}" y="{y + row_h / 2 + 4:.1f}">'
            f"{escape(format_value(bar.value))}</text></g>"
        )
    parts.append("</g>")
    parts.append(f'<line class="axis-line" x1="{left}" x2="{left}" y1="{top}" y2="{base}"/>')
    if not bars:
        parts.append(
            f'<text class="empty" x="{left + plot_w / 2:.1f}" y="{top + row_h / 2 + 4}" '
            f'text-anchor="middle">{escape(empty_text)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  (every text above is escaped)
