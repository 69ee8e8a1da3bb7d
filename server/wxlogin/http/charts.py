"""Server-rendered SVG charts for the owner's page: no script, no library, no CDN; the numbers
are also in the markup as text (each bar's <title>, and a table beside the chart)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

ACCENT = "#1a7f37"
MUTED = "#636366"
GRID = "#d1d1d6"


def bars(values: Sequence[tuple[str, int]], *, label: str, width: int = 640,
         height: int = 180) -> str:
    """Vertical bars, one per (label, value), e.g. logins per day."""
    top, bottom, left = 16, 24, 36
    plot_h, plot_w = height - top - bottom, width - left - 8
    peak = max([value for _, value in values] + [1])
    step = plot_w / max(len(values), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img"'
        f' aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}"'
        f' stroke="{GRID}"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11"'
        f' fill="{MUTED}">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11"'
        f' fill="{MUTED}">0</text>',
    ]
    for index, (name, value) in enumerate(values):
        bar_h = plot_h * value / peak
        x = left + index * step + step * 0.15
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - bar_h:.1f}"'
            f' width="{step * 0.7:.1f}" height="{bar_h:.1f}" fill="{ACCENT}"'
            f' data-value="{value}"><title>{escape(name)}: {value}</title></rect>'
        )
        last = len(values) - 1
        if index % 7 == 0 or (index == last and last % 7 >= 3):  # labels never overlap
            parts.append(
                f'<text x="{x + step * 0.35:.1f}" y="{height - 6}" text-anchor="middle"'
                f' font-size="11" fill="{MUTED}">{escape(name[5:])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def funnel(steps: Sequence[tuple[str, int]], *, label: str, width: int = 640) -> str:
    """Horizontal bars from the first step (100%) down, each with its count and share."""
    row, left = 30, 150
    height = row * len(steps) + 8
    first = max(steps[0][1], 1) if steps else 1
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img"'
        f' aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for index, (name, value) in enumerate(steps):
        y = 4 + index * row
        bar_w = (width - left - 110) * value / first
        share = f"{100 * value / first:.0f}%" if steps[0][1] else "—"
        parts.append(
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" font-size="13"'
            f' fill="{MUTED}">{escape(name)}</text>'
            f'<rect class="step" x="{left}" y="{y + 4}" width="{bar_w:.1f}" height="{row - 10}"'
            f' fill="{ACCENT}" opacity="{1 - index * 0.12:.2f}" data-value="{value}">'
            f"<title>{escape(name)}: {value}</title></rect>"
            f'<text x="{left + bar_w + 6:.1f}" y="{y + 17}" font-size="13"'
            f' fill="#1d1d1f">{value} ({share})</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
