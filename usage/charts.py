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

WIDTH = 720  # the wide drawing's viewBox; the phone's is NARROW_WIDTH
NARROW_WIDTH = 360


@dataclass(frozen=True)
class Frame:
    """One drawing's geometry. Each chart is drawn twice, wide and narrow, and the CSS shows
    the one that fits: an SVG scales its text with it, so a 720-unit drawing squeezed onto
    a phone would print 13px labels at 6px."""

    width: int
    variant: str  # "wide" or "narrow": the svg's class, and the narrow one's id suffix
    max_labels: int  # x-axis labels of a column chart
    label_chars: int  # a bar's label, shortened beyond this


WIDE = Frame(WIDTH, "wide", max_labels=8, label_chars=24)
NARROW = Frame(NARROW_WIDTH, "narrow", max_labels=4, label_chars=40)


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


def _svg_open(chart_id: str, title: str, desc: str, height: float, frame: Frame) -> str:
    svg_id = chart_id if frame is WIDE else f"{chart_id}-{frame.variant}"
    return (
        f'<svg class="chart chart-{frame.variant}" id="{svg_id}" '
        f'viewBox="0 0 {frame.width} {height:.0f}" role="img" '
        f'aria-labelledby="{svg_id}-title {svg_id}-desc" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{svg_id}-title">{escape(title)}</title>'
        f'<desc id="{svg_id}-desc">{escape(desc)}</desc>'
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
    """Vertical bars over time, with a labelled value axis and gridlines (wide and narrow)."""
    return mark_safe(  # noqa: S308  (every text in them is escaped)
        "".join(
            _column_svg(chart_id, title, desc, columns, format_value, empty_text, frame)
            for frame in (WIDE, NARROW)
        )
    )


def _column_svg(
    chart_id: str,
    title: str,
    desc: str,
    columns: Sequence[Column],
    format_value: Callable[[int], str],
    empty_text: str,
    frame: Frame,
) -> str:
    width = frame.width
    height, left, right, top, bottom = 240, (76 if frame is WIDE else 66), 10, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(max((column.value for column in columns), default=0))
    scale = plot_h / (ticks[-1] or 1)
    base = top + plot_h
    parts = [_svg_open(chart_id, title, desc, height, frame)]

    parts.append('<g class="axis y-axis">')
    for tick in ticks:
        y = base - tick * scale
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(format_value(tick))}</text>"
        )
    parts.append("</g>")

    slot = plot_w / max(len(columns), 1)
    # At most max_labels labels, so that they never overlap.
    every = math.ceil(len(columns) / frame.max_labels) or 1
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
        f'<line class="axis-line" x1="{left}" x2="{width - right}" y1="{base}" y2="{base}"/>'
        f'<line class="axis-line" x1="{left}" x2="{left}" y1="{top}" y2="{base}"/>'
    )
    if ticks == [0]:
        parts.append(
            f'<text class="empty" x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" '
            f'text-anchor="middle">{escape(empty_text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


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
    """Horizontal bars, one per row (a model, a key), each with its value at its end; wide
    (the label left of its bar) and narrow (the label above its bar)."""
    return mark_safe(  # noqa: S308  (every text in them is escaped)
        "".join(
            _bar_svg(chart_id, title, desc, bars, format_value, empty_text, frame)
            for frame in (WIDE, NARROW)
        )
    )


def _bar_svg(
    chart_id: str,
    title: str,
    desc: str,
    bars: Sequence[Bar],
    format_value: Callable[[int], str],
    empty_text: str,
    frame: Frame,
) -> str:
    beside = frame is WIDE  # the label beside its bar; else above it
    width = frame.width
    row_h, left, right, top, bottom = (28, 190, 96, 8, 26) if beside else (44, 8, 100, 8, 26)
    rows = max(len(bars), 1)
    height = top + rows * row_h + bottom
    plot_w = width - left - right
    ticks = nice_ticks(max((bar.value for bar in bars), default=0))
    scale = plot_w / (ticks[-1] or 1)
    base = top + rows * row_h
    parts = [_svg_open(chart_id, title, desc, height, frame)]

    parts.append('<g class="axis x-axis">')
    for index, tick in enumerate(ticks):
        x = left + tick * scale
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{base}"/>')
        if beside or index in (0, len(ticks) - 1):  # a narrow axis has room for its ends
            anchor = "middle" if beside else ("start" if index == 0 else "end")
            parts.append(
                f'<text x="{x:.1f}" y="{base + 18}" text-anchor="{anchor}">'
                f"{escape(format_value(tick))}</text>"
            )
    parts.append("</g>")

    parts.append('<g class="bars">')
    for index, bar in enumerate(bars):
        y = top + index * row_h
        bar_w = bar.value * scale
        label = escape(_shorten(bar.label, frame.label_chars))
        if beside:
            bar_y, bar_h, text_y = y + 5, row_h - 10, y + row_h / 2 + 4
            parts.append(
                f"<g><title>{escape(bar.tooltip)}</title>"
                f'<text class="y-label" x="{left - 8}" y="{text_y:.1f}" '
                f'text-anchor="end">{label}</text>'
            )
        else:
            bar_y, bar_h, text_y = y + 21, 16, y + 34
            parts.append(
                f"<g><title>{escape(bar.tooltip)}</title>"
                f'<text class="y-label" x="{left}" y="{y + 15}">{label}</text>'
            )
        if bar_w:
            parts.append(
                f'<rect class="bar" x="{left}" y="{bar_y}" width="{bar_w:.1f}" '
                f'height="{bar_h}" rx="2"/>'
            )
        parts.append(
            f'<text class="value" x="{left + bar_w + 6:.1f}" y="{text_y:.1f}">'
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
    return "".join(parts)
