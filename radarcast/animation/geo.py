"""Map furniture for geo-referenced panels: km grid lines and a scale bar, drawn from the
dataset's projection (no basemap, nothing downloaded)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

NICE_KM = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def nice_length_km(width_km: float) -> int:
    """The largest 1-2-5 length that is at most a quarter of the panel's width."""
    fits = [k for k in NICE_KM if k <= width_km / 4]
    return fits[-1] if fits else NICE_KM[0]


def _bar(length_px: int, label: str) -> np.ndarray:
    """(h, w, 3) uint8: a black bar with end ticks and its label on white."""
    from radarcast.animation.layout import font, text_width

    size = 11
    w = max(length_px, text_width(label, size)) + 8
    h = size + 12
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    y = h - 4
    d.line([(4, y), (4 + length_px, y)], fill=(0, 0, 0), width=2)
    for x in (4, 4 + length_px):
        d.line([(x, y - 4), (x, y)], fill=(0, 0, 0), width=1)
    d.text((4, 1), label, font=font(size), fill=(0, 0, 0))
    return np.asarray(img)


def map_overlay(georef, shape: tuple[int, int]) -> tuple[Callable, str] | None:
    """For a geo-referenced (H, W) grid: a function drawing dotted grid lines every L km of
    the projection and an L-km scale bar on an (H, W, 3) panel, and a caption naming them;
    None without a geo-reference."""
    if georef is None:
        return None
    h, w = shape
    step = nice_length_km(w * georef.xpixelsize / 1000.0)
    x_km, y_km = georef.x(w) / 1000.0, georef.y(h) / 1000.0
    cols = np.flatnonzero(np.diff(np.floor(x_km / step)) != 0) + 1
    rows = np.flatnonzero(np.diff(np.floor(y_km / step)) != 0) + 1
    lines = np.zeros((h, w), bool)
    lines[rows[:, None], np.arange(0, w, 3)[None, :]] = True  # dotted: every 3rd pixel
    lines[np.arange(0, h, 3)[:, None], cols[None, :]] = True
    bar = _bar(max(1, round(step * 1000.0 / georef.xpixelsize)), f"{step} km")
    bh, bw = min(bar.shape[0], h), min(bar.shape[1], w)

    def draw(rgb: np.ndarray) -> np.ndarray:
        out = rgb.copy()
        out[lines] = (out[lines] * 0.5 + 60).astype(np.uint8)
        out[h - bh :, :bw] = bar[:bh, :bw]
        return out

    return draw, f"dotted lines every {step} km of the projection"
