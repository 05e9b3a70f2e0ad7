"""Map furniture for geo-referenced panels: grid lines and a scale bar, drawn from the
dataset's projection (no basemap, nothing downloaded).

Two kinds of grid lines (``--map``): ``km``, dotted lines every L km of the projection's
x/y; ``lonlat``, a graticule of meridians and parallels every D degrees, placed by pyproj
from each pixel centre's WGS 84 longitude and latitude. Both come with an L-km scale bar
(projected km) in the panel's lower-left corner and, on panels of at least
:data:`LABEL_MIN_PX` pixels a side, each line's value where it meets the top edge
(x km, longitude) or the left edge (y km, latitude).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

NICE_KM = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
NICE_DEG = (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30)
MAP_GRIDS = ("km", "lonlat", "none")
MAX_GRATICULE_LINES = 6
LABEL_MIN_PX = 150  # smaller panels would be mostly labels
LABEL_SIZE = 10


def nice_step_deg(span_deg: float) -> float:
    """The smallest 1-2-5 degree step that draws at most 6 lines across ``span_deg``."""
    fits = [d for d in NICE_DEG if span_deg / d <= MAX_GRATICULE_LINES]
    return fits[0] if fits else NICE_DEG[-1]


def _crossings(values: np.ndarray, step: float) -> np.ndarray:
    """(H, W) bool: pixels whose right or lower neighbour lies past a multiple of ``step``
    (the pixel just before each line)."""
    k = np.floor(values / step)
    out = np.zeros(values.shape, bool)
    out[:, :-1] |= k[:, :-1] != k[:, 1:]
    out[:-1, :] |= k[:-1, :] != k[1:, :]
    return out


def graticule(georef, shape: tuple[int, int]) -> tuple[np.ndarray, float]:
    """(H, W) bool mask of the meridians and parallels every D degrees, and D."""
    lines, step, _ = _graticule(georef, shape)
    return lines, step


def _graticule(georef, shape):
    """:func:`graticule`, and the edge labels of its lines."""
    lon, lat = georef.lonlat(shape)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return np.zeros(shape, bool), NICE_DEG[-1], []
    span = max(np.ptp(lon[ok]), np.ptp(lat[ok]))
    step = nice_step_deg(float(span))
    lon, lat = np.where(ok, lon, np.nan), np.where(ok, lat, np.nan)
    with np.errstate(invalid="ignore"):
        lines = _crossings(lon, step) | _crossings(lat, step)
        labels = [(0, c, _deg_label(v, "EW")) for c, v in edge_crossings(lon[0], step)]
        labels += [(r, 0, _deg_label(v, "NS")) for r, v in edge_crossings(lat[:, 0], step)]
    return lines & ok, step, labels


def edge_crossings(values: np.ndarray, step: float) -> list[tuple[int, float]]:
    """Where a profile of ``values`` along an edge passes a multiple of ``step``: (index of
    the pixel after the line, the multiple), in order along the edge."""
    k = np.floor(values / step)
    found = np.flatnonzero(np.isfinite(k[:-1]) & np.isfinite(k[1:]) & (k[:-1] != k[1:]))
    return [(int(i) + 1, float(step * max(k[i], k[i + 1]))) for i in found]


def _deg_label(value: float, hemispheres: str) -> str:
    """6°E, 0°, 12.5°W; 46°N, 33°S."""
    value = round(value, 6) + 0.0  # no -0
    if value == 0:
        return "0°"
    return f"{abs(value):g}°{hemispheres[0] if value > 0 else hemispheres[1]}"


def _label_layer(
    labels, shape: tuple[int, int], reserved=()
) -> tuple[np.ndarray, np.ndarray] | None:
    """The labels drawn once, each black on a white box beside its line (right of a line
    along the top edge, below one along the left edge), skipping any that would overlap
    one already placed, a ``reserved`` (x0, y0, x1, y1) box (the scale bar) or leave the
    panel: (H, W, 3) uint8 and its (H, W) bool mask."""
    from PIL import Image, ImageDraw

    from radarcast.animation.layout import font, text_width

    h, w = shape
    if not labels or min(h, w) < LABEL_MIN_PX:
        return None
    img = Image.new("RGB", (w, h), (255, 255, 255))
    mask = Image.new("L", (w, h), 0)
    draw, fill = ImageDraw.Draw(img), ImageDraw.Draw(mask)
    placed: list[tuple[int, int, int, int]] = list(reserved)
    for r, c, text in labels:
        x0, y0 = (c + 2, 1) if r == 0 else (1, r + 2)
        box = (x0, y0, x0 + text_width(text, LABEL_SIZE) + 3, y0 + LABEL_SIZE + 3)
        if box[2] > w or box[3] > h or any(
            box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed
        ):
            continue
        placed.append(box)
        fill.rectangle(box, fill=255)
        draw.text((x0 + 1, y0), text, font=font(LABEL_SIZE), fill=(0, 0, 0))
    return np.asarray(img), np.asarray(mask) > 0


def _deg(step: float) -> str:
    return f"{step:g}°"


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


def map_overlay(georef, shape: tuple[int, int], grid: str = "km") -> tuple[Callable, str] | None:
    """For a geo-referenced (H, W) grid: a function drawing grid lines (``grid`` 'km':
    dotted, every L km of the projection; 'lonlat': meridians and parallels every D degrees,
    through pyproj) and an L-km scale bar on an (H, W, 3) panel, and a caption naming them;
    None without a geo-reference or with ``grid`` 'none'."""
    if georef is None or grid == "none":
        return None
    h, w = shape
    step = nice_length_km(w * georef.xpixelsize / 1000.0)
    if grid == "lonlat":
        lines, deg, labels = _graticule(georef, shape)
        caption = f"lon/lat lines every {_deg(deg)} (WGS 84), scale bar {step} km"
    else:
        x_km, y_km = georef.x(w) / 1000.0, georef.y(h) / 1000.0
        top, left = edge_crossings(x_km, step), edge_crossings(y_km, step)
        cols = np.array([c for c, _ in top], dtype=int)
        rows = np.array([r for r, _ in left], dtype=int)
        lines = np.zeros((h, w), bool)
        lines[rows[:, None], np.arange(0, w, 3)[None, :]] = True  # dotted: every 3rd pixel
        lines[np.arange(0, h, 3)[:, None], cols[None, :]] = True
        labels = [(0, c, f"{v:g} km") for c, v in top] + [(r, 0, f"{v:g} km") for r, v in left]
        caption = f"dotted lines every {step} km of the projection"
    bar = _bar(max(1, round(step * 1000.0 / georef.xpixelsize)), f"{step} km")
    bh, bw = min(bar.shape[0], h), min(bar.shape[1], w)
    layer = _label_layer(labels, shape, reserved=[(0, h - bh, bw, h)])

    def draw(rgb: np.ndarray) -> np.ndarray:
        out = rgb.copy()
        out[lines] = (out[lines] * 0.5 + 60).astype(np.uint8)
        if layer is not None:
            out[layer[1]] = layer[0][layer[1]]
        out[h - bh :, :bw] = bar[:bh, :bw]
        return out

    return draw, caption
