"""A nowcast as a picture: a GIF of the newest observation then every lead, or a PNG
sheet of them, in the animation module's colours; geo-referenced inputs get the
animations' km grid lines and scale bar (radarcast.animation.geo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radarcast.export.cube import check_units

TITLE_PX = 22


def _panel(pixels: np.ndarray, valid: np.ndarray, scale, title: str, draw=None) -> np.ndarray:
    from radarcast.animation.colours import colourise
    from radarcast.animation.layout import text_block

    rgb = colourise(pixels, valid, scale)  # (H, W, 3) uint8
    if draw is not None:  # map furniture: grid lines and a scale bar
        rgb = draw(rgb)
    head = text_block(title, 14, rgb.shape[1], TITLE_PX)
    return np.concatenate([head, rgb], axis=0)


def panels(nowcast, units: str) -> list[np.ndarray]:
    """(H + title, W, 3) uint8 images: the newest input, then each lead (member 1)."""
    from radarcast.animation.colours import colour_scale
    from radarcast.animation.geo import map_overlay
    from radarcast.animation.layout import clock, lead_text

    inp = nowcast.inputs
    scale = colour_scale(inp.units, check_units(units))
    pred = nowcast.pred if nowcast.members is None else nowcast.pred[0]  # (n_out, H, W)
    t0 = nowcast.analysis_time
    furniture = map_overlay(inp.georef, inp.frames.shape[1:])
    draw = None if furniture is None else furniture[0]
    out = [_panel(inp.frames[-1], inp.valid[-1], scale, f"observed {clock(t0, True)}", draw)]
    for k, p in enumerate(pred, 1):
        valid = np.isfinite(p)
        pixels = np.rint(np.nan_to_num(p)).astype(np.uint8)
        lead = k * inp.timestep_s
        title = f"{nowcast.method} {lead_text(lead)} (valid {clock(t0 + lead)} UTC)"
        out.append(_panel(pixels, valid, scale, title, draw))
    return out


def write_picture(nowcast, path: Path, units: str) -> Path:
    """.gif: one frame per panel; .png: the panels in rows of four."""
    from radarcast.animation import write_output

    images = panels(nowcast, units)
    if path.suffix.lower() == ".gif":
        return write_output(path, images, fps=2.0)
    cols = min(4, len(images))
    blank = np.full_like(images[0], 255)
    images += [blank] * (-len(images) % cols)
    rows = [np.concatenate(images[i : i + cols], axis=1) for i in range(0, len(images), cols)]
    return write_output(path, np.concatenate(rows, axis=0))
