"""A small dependency-free SVG line chart (log-log or linear axes)."""

from __future__ import annotations

import math
from html import escape

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        out = []
        e = math.floor(math.log10(lo))
        while 10**e <= hi * 1.0001:
            for m in (1, 2, 5):
                v = m * 10**e
                if lo / 1.0001 <= v <= hi * 1.0001:
                    out.append(v)
            e += 1
        return out or [lo, hi]
    step = 10 ** math.floor(math.log10((hi - lo) or 1))
    while (hi - lo) / step > 8:
        step *= 2
    start = math.floor(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 2)]


def _fmt(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def line_chart(
    title: str,
    series: dict[str, list[tuple[float, float]]],
    x_label: str,
    y_label: str,
    log: bool = True,
    width: int = 640,
    height: int = 360,
) -> str:
    left, right, top, bottom = 70, 170, 40, 50
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = (min(ys), max(ys)) if log else (0.0, max(ys) * 1.1)
    if log:
        y_lo, y_hi = y_lo / 1.5, y_hi * 1.5
        x_lo, x_hi = x_lo / 1.2, x_hi * 1.2
    f = math.log10 if log else (lambda v: v)

    def px(x: float) -> float:
        return left + (f(x) - f(x_lo)) / ((f(x_hi) - f(x_lo)) or 1) * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - (f(y) - f(y_lo)) / ((f(y_hi) - f(y_lo)) or 1) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    for t in _ticks(y_lo, y_hi, log):
        if y_lo <= t <= y_hi:
            parts.append(f'<line x1="{left}" x2="{width - right}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#ddd"/>')
            parts.append(f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    for t in _ticks(x_lo, x_hi, log):
        if x_lo <= t <= x_hi:
            parts.append(f'<line y1="{top}" y2="{height - bottom}" x1="{px(t):.1f}" x2="{px(t):.1f}" stroke="#eee"/>')
            parts.append(f'<text x="{px(t):.1f}" y="{height - bottom + 16}" text-anchor="middle">{_fmt(t)}</text>')
    parts.append(
        f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
        'fill="none" stroke="#333"/>'
    )
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text transform="translate(16 {(top + height - bottom) / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    for i, (name, pts) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        path = " ".join(f"{'M' if j == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for j, (x, y) in enumerate(sorted(pts)))
        parts.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in pts:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>')
        ly = top + 10 + 18 * i
        parts.append(
            f'<line x1="{width - right + 10}" x2="{width - right + 30}" y1="{ly}" y2="{ly}" '
            f'stroke="{color}" stroke-width="2"/>'
        )
        parts.append(f'<text x="{width - right + 35}" y="{ly + 4}">{escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
