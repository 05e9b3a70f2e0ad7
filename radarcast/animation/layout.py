"""Text and layout: the pre-drawn canvas of titled panels, colour bar and legend."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timezone

import numpy as np

from radarcast.animation.colours import ColourScale, _hatch
from radarcast.data.units import UNIT_LABELS


# --------------------------------------------------------------------------- text
@functools.lru_cache(maxsize=8)
def font(size: int):
    """Pillow's built-in font at ``size`` px (the fixed bitmap font on old Pillow)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the small bitmap font
        return ImageFont.load_default()


def text_width(text: str, size: int) -> int:
    box = font(size).getbbox(text)
    return int(box[2] - box[0])


def fit_text(text: str, size: int, width: int) -> str:
    """``text``, shortened with '…' until it fits in ``width`` px."""
    if text_width(text, size) <= width:
        return text
    while len(text) > 1 and text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


@functools.lru_cache(maxsize=2048)
def text_block(text: str, size: int, width: int, height: int, colour=(40, 40, 40)) -> np.ndarray:
    """(height, width, 3) uint8: ``text`` drawn left-aligned on white, cached by content."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), (255, 255, 255))
    ImageDraw.Draw(img).text((0, height // 2), fit_text(text, size, width), font=font(size),
                             fill=colour, anchor="lm")
    return np.asarray(img)


def clock(t: int, date: bool = False) -> str:
    """'12:30' (with seconds when they are not 0), or '2020-09-13 12:30 UTC' with ``date``."""
    fmt = "%H:%M:%S" if int(t) % 60 else "%H:%M"
    fmt = f"%Y-%m-%d {fmt} UTC" if date else fmt
    return datetime.fromtimestamp(int(t), tz=timezone.utc).strftime(fmt)


def lead_text(seconds: int) -> str:
    """+1800 → '+30 min', -600 → '-10 min', 0 → 't0' (ASCII: the built-in font lacks '−')."""
    if seconds == 0:
        return "t0"
    sign = "+" if seconds > 0 else "-"
    s = abs(int(seconds))
    return f"{sign}{s // 60} min" if s % 60 == 0 else f"{sign}{s} s"


# --------------------------------------------------------------------------- layout
class Grid:
    """A canvas of rows × columns of image cells, each with a stamp line below, a title and
    an info line on top, and the colour bar and legend on the right.

    The static parts are drawn once (:attr:`background`); :meth:`cell`, :meth:`stamp` and
    :meth:`info` fill a copy per frame. Cells take native-resolution RGB and upscale by
    ``k`` (nearest neighbour); with ``max_width`` the panels shrink (nearest neighbour,
    aspect kept) until the whole canvas is at most that many pixels wide.
    """

    def __init__(self, n_rows: int, n_cols: int, shape: tuple[int, int], k: int, *,
                 title: str, col_titles: Sequence[str], row_titles: Sequence[str] = (),
                 scale: ColourScale, legend: Sequence[tuple[str, object]],
                 titles_above: int = 0, max_width: int | None = None) -> None:
        self.k, self.shape, self.titles_above = k, shape, titles_above
        self.overlay = None  # rgb → rgb drawn on every panel (map furniture), or None
        args = (n_rows, n_cols, row_titles, scale, legend)
        width = shape[1] * k
        if max_width is not None and self._layout(width, *args) > max_width:
            lo, hi = 1, width  # the widest panel whose canvas fits in max_width
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if self._layout(mid, *args) <= max_width else (lo, mid - 1)
            width = lo
        self._layout(width, *args)
        self.resampled = (self.h, self.w) != (shape[0] * k, shape[1] * k)
        if self.resampled:  # nearest-neighbour rows and columns of the native grid
            self._rows = np.arange(self.h) * shape[0] // self.h
            self._cols = np.arange(self.w) * shape[1] // self.w
        self.background = self._draw(title, col_titles, row_titles, n_rows, n_cols,
                                     (self.bar_x, self.bar_h), scale, legend)

    def _layout(self, w: int, n_rows, n_cols, row_titles, scale, legend) -> int:
        """Place everything for panels ``w`` px wide; returns the canvas width."""
        self.w = w
        self.h = max(1, round(self.shape[0] * w / self.shape[1]))
        self.fs = fs = int(np.clip(self.w // 24, 12, 28))
        self.line = fs + 8
        margin, self.gap = 12, 8
        label_w = max((text_width(t, fs) for t in row_titles), default=-margin) + margin
        self.x0 = margin + label_w
        self.y0 = margin + 2 * self.line  # below the title and info lines
        self.pitch = (self.w + self.gap, self.h + self.line + self.gap // 2)
        grid_w = n_cols * self.pitch[0] - self.gap
        grid_h = n_rows * self.pitch[1] - self.gap // 2 + self.line  # + column titles
        self.bar_x = self.x0 + grid_w + 2 * margin
        self.bar_h, right_w, right_h = self._right_size(scale, legend, grid_h)
        self.width = self.bar_x + right_w + margin
        self.height = max(self.y0 + grid_h, self.y0 + right_h) + margin
        return self.width

    def _right_size(self, scale, legend, grid_h):
        fs, n = self.fs, len(scale.levels)
        labels_w = max(text_width(scale.label(i), fs) for i in range(n))
        legend_w = max((text_width(t, fs) + (0 if c is None else fs + 10) for t, c in legend),
                       default=0)
        legend_h = len(legend) * self.line + self.line // 2
        box = max(fs + 2, (grid_h - legend_h - 2 * self.line) // n)
        bar_h = box * n
        right_w = max(fs + 8 + labels_w, legend_w, text_width(UNIT_LABELS[scale.unit], fs))
        return bar_h, right_w, 2 * self.line + bar_h + legend_h

    def box(self, r: int, c: int) -> tuple[int, int]:
        """(y, x) of the top-left corner of cell (r, c) in the canvas."""
        titles = self.line if r >= self.titles_above else 0
        return self.y0 + titles + r * self.pitch[1], self.x0 + c * self.pitch[0]

    def _draw(self, title, col_titles, row_titles, n_rows, n_cols, bar, scale, legend):
        from PIL import Image, ImageDraw

        img = Image.new("RGB", (self.width, self.height), (255, 255, 255))
        d, fs, f = ImageDraw.Draw(img), self.fs, font(self.fs)
        d.text((12, 12 + self.line // 2), fit_text(title, fs + 2, self.width - 24),
               font=font(fs + 2), fill=(0, 0, 0), anchor="lm")
        for c in range(n_cols):
            y, x = self.box(self.titles_above, c)
            text = fit_text(col_titles[c], fs, self.w)
            d.text((x + self.w // 2, y - self.line // 2), text, font=f, fill=(0, 0, 0), anchor="mm")
        for r in range(n_rows):
            y, x = self.box(r, 0)
            if row_titles:
                d.text((x - 12, y + self.h // 2), row_titles[r], font=f, fill=(0, 0, 0),
                       anchor="rm")
            for c in range(n_cols):
                y, x = self.box(r, c)
                d.rectangle((x - 1, y - 1, x + self.w, y + self.h), outline=(150, 150, 150))
        self._draw_bar(d, bar, scale)
        hatches = self._draw_legend(d, bar, legend)
        out = np.asarray(img).copy()
        sw = self.fs  # swatch size
        for (y, x), colours in hatches:  # hatched swatches are pasted as pixels
            out[y : y + sw, x : x + sw] = _hatch((sw, sw), tuple(colours[0]), tuple(colours[1]))
        return out

    def _draw_bar(self, d, bar, scale):
        (x, h), fs, n = bar, self.fs, len(scale.levels)
        top = self.y0 + 2 * self.line
        d.text((x, top - self.line // 2), UNIT_LABELS[scale.unit], font=font(fs), fill=(0, 0, 0),
               anchor="lm")
        box, bw = h // n, fs  # box height, bar width
        for i in range(n):
            y1 = top + h - i * box  # level i's box spans (y1 - box, y1)
            d.rectangle((x, y1 - box, x + bw, y1), fill=tuple(int(v) for v in scale.colours[i]))
            d.line((x + bw, y1, x + bw + 4, y1), fill=(0, 0, 0))
            d.text((x + bw + 7, y1), scale.label(i), font=font(fs), fill=(0, 0, 0), anchor="lm")
        d.rectangle((x, top, x + bw, top + h), outline=(0, 0, 0))

    def _draw_legend(self, d, bar, legend) -> list:
        x, y = bar[0], self.y0 + 3 * self.line + bar[1]
        hatches, sw = [], self.fs  # swatch size
        half = sw // 2
        for i, (text, colour) in enumerate(legend):
            yy = y + i * self.line
            if colour is None:  # a heading
                d.text((x, yy), text, font=font(self.fs), fill=(0, 0, 0), anchor="lm")
                continue
            if isinstance(colour, np.ndarray):  # (2, 3) hatch colours
                hatches.append(((yy - half, x), colour))
            else:
                d.rectangle((x, yy - half, x + sw - 1, yy - half + sw - 1), fill=colour)
            d.rectangle((x - 1, yy - half - 1, x + sw, yy - half + sw), outline=(120, 120, 120))
            d.text((x + sw + 8, yy), text, font=font(self.fs), fill=(0, 0, 0), anchor="lm")
        return hatches

    def canvas(self) -> np.ndarray:
        return self.background.copy()

    def cell(self, canvas: np.ndarray, r: int, c: int, rgb: np.ndarray | None) -> None:
        """Paste (H, W, 3) native RGB into cell (r, c), upscaled ×k (or resampled to fit),
        with :attr:`overlay` drawn on the panel as shown; None leaves it blank."""
        if rgb is None:
            return
        y, x = self.box(r, c)
        if self.resampled or self.overlay is not None:
            if self.resampled:  # shrunk to fit --max-width, or not an integer multiple
                shown = rgb[self._rows][:, self._cols]
            else:
                shown = np.repeat(np.repeat(rgb, self.k, axis=0), self.k, axis=1)
            if self.overlay is not None:
                shown = self.overlay(shown)
            canvas[y : y + self.h, x : x + self.w] = shown
            return
        h0, w0 = self.shape
        view = canvas[y : y + self.h, x : x + self.w].reshape(h0, self.k, w0, self.k, 3)
        assert np.shares_memory(view, canvas)  # reshape of a slice must stay a view
        view[...] = rgb[:, None, :, None, :]

    def stamp(self, canvas: np.ndarray, r: int, c: int, text: str) -> None:
        y, x = self.box(r, c)
        canvas[y + self.h + 2 : y + self.h + self.line, x : x + self.w] = text_block(
            text, self.fs, self.w, self.line - 2)

    def info(self, canvas: np.ndarray, text: str) -> None:
        y = 12 + self.line
        width = self.width - 24
        canvas[y : y + self.line, 12 : 12 + width] = text_block(text, self.fs, width, self.line,
                                                                 (0, 0, 0))


