"""Small line plots as inline SVG (the report's skill-vs-lead and training curves): text,
no external fonts or scripts, a few milliseconds each."""

from __future__ import annotations

import math
from html import escape

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def line_plot(series: dict[str, tuple[list, list]], title: str, xlabel: str, ylabel: str,
              width: int = 360, height: int = 240, logy: bool = False) -> str:
    """``series`` name → (x, y); None/NaN y values break the line. Returns an <svg>."""
    pts = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys, strict=True)
           if y is not None and math.isfinite(y) and (not logy or y > 0)]
    left, right, top, bottom = 52, 10, 24, 40
    legend_h = 14 * len(series)
    h = height + legend_h
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" '
           f'viewBox="0 0 {width} {h}" role="img" aria-label="{escape(title)}">',
           f'<text x="{width / 2}" y="15" text-anchor="middle" font-size="13">'
           f'{escape(title)}</text>']
    if not pts:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" '
                   'font-size="12">no data</text></svg>')
        return "".join(out)
    tf = (lambda v: math.log10(v)) if logy else (lambda v: v)
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(tf(p[1]) for p in pts), max(tf(p[1]) for p in pts)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = width - left - right, height - top - bottom

    def sx(x):
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return top + ph - (tf(y) - y0) / (y1 - y0) * ph

    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
               'stroke="#888"/>')
    for t in _ticks(x0, x1):
        out.append(f'<text x="{sx(t):.1f}" y="{top + ph + 14}" text-anchor="middle" '
                   f'font-size="10">{t:g}</text>')
    for t in _ticks(y0, y1):
        label = f"{10 ** t:.3g}" if logy else f"{t:.3g}"
        y = top + ph - (t - y0) / (y1 - y0) * ph
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end" '
                   f'font-size="10">{label}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{top + ph + 30}" text-anchor="middle" '
               f'font-size="11">{escape(xlabel)}</text>')
    out.append(f'<text x="12" y="{top + ph / 2}" text-anchor="middle" font-size="11" '
               f'transform="rotate(-90 12 {top + ph / 2})">{escape(ylabel)}</text>')
    for i, (name, (xs, ys)) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        parts, run = [], []
        for x, y in zip(xs, ys, strict=True):
            if y is None or not math.isfinite(y) or (logy and y <= 0):
                if run:
                    parts.append(run)
                run = []
            else:
                run.append(f"{sx(x):.1f},{sy(y):.1f}")
        if run:
            parts.append(run)
        for p in parts:
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" '
                       f'points="{" ".join(p)}"/>')
        ly = height + 14 * i + 4
        out.append(f'<line x1="{left}" x2="{left + 18}" y1="{ly}" y2="{ly}" '
                   f'stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{left + 24}" y="{ly + 4}" font-size="11">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)
