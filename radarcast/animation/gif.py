"""GIF encoding with one palette for the whole animation.

The panels use a few dozen exact colours (the colour scale's levels, the no-data hatch,
the overlay's hit/miss/false-alarm colours, white, and the greys of anti-aliased text), so
one palette of the colours used (the 256 most used where there are more), shared by every
frame and applied without dithering, keeps each colour exact and lets the encoder store
only the rectangle that changed from the previous frame. A per-frame adaptive palette with
dithering (what a generic writer does) scatters noise over flat areas and grows the file.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

import numpy as np

MAX_COLOURS = 256


def _pack(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 → (...) uint32 0xRRGGBB."""
    rgb = rgb.astype(np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _unpack(packed: np.ndarray) -> np.ndarray:
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], -1).astype(np.uint8)


def shared_palette(frames: list[np.ndarray], packed_frames: list[np.ndarray] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """One palette for all frames, and a lookup table from packed colour to its index.

    Returns ``(palette (P, 3) uint8, lut (2**24,) uint8)``: the 256 most used colours (all
    of them when there are fewer), each kept exact; a colour beyond those (a rare grey of
    anti-aliased text) maps to the nearest palette colour in RGB. ``packed_frames``: the
    frames already packed (:func:`_pack`), so that an encoder packs each frame once.
    """
    packed_frames = packed_frames or [_pack(f) for f in frames]
    packed, counts = np.unique(np.concatenate([p.ravel() for p in packed_frames]),
                               return_counts=True)  # fmt: skip
    keep = np.sort(np.argsort(-counts, kind="stable")[:MAX_COLOURS])
    palette = _unpack(packed[keep])
    lut = np.zeros(1 << 24, np.uint8)
    lut[packed[keep]] = np.arange(len(keep), dtype=np.uint8)
    rest = np.setdiff1d(packed, packed[keep], assume_unique=True)
    if len(rest):
        d = (_unpack(rest)[:, None, :].astype(np.int32) - palette[None].astype(np.int32)) ** 2
        lut[rest] = d.sum(-1).argmin(1).astype(np.uint8)
    return palette, lut


def encode_gif(frames: Iterable[np.ndarray], fps: float) -> bytes:
    """Frames ((H, W, 3) uint8, same size) → the bytes of a looping GIF at ``fps``."""
    from PIL import Image

    frames = list(frames)
    packed = [_pack(f) for f in frames]  # once per frame: for the palette and the indices
    palette, lut = shared_palette(frames, packed)
    flat = np.zeros((MAX_COLOURS, 3), np.uint8)
    flat[: len(palette)] = palette
    images = []
    for p in packed:
        img = Image.fromarray(lut[p], mode="P")
        img.putpalette(flat.ravel().tolist())
        images.append(img)
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=round(1000 / fps), loop=0, optimize=False, disposal=1)  # fmt: skip
    return buf.getvalue()
