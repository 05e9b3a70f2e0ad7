"""Panels → RGB frames: the animation's frames and the contact sheet."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from radarcast.animation.colours import (
    OVERLAY_RGB,
    ColourScale,
    _draw,
    colourise,
    contingency_rgb,
)
from radarcast.animation.config import AnimateConfig
from radarcast.animation.ensemble import prob_legend, prob_lut
from radarcast.animation.geo import map_overlay
from radarcast.animation.layout import Grid, clock, lead_text
from radarcast.animation.panels import WindowPanels
from radarcast.data.units import UNIT_LABELS
from radarcast.errors import RadarcastError

_PROB_LUT = prob_lut()


# --------------------------------------------------------------------------- frames
def _legend(scale: ColourScale, cfg: AnimateConfig) -> list:
    items: list = [("no data", scale.nodata)]
    if cfg.overlay is not None:
        items.append((f"events >= {cfg.overlay:g} {UNIT_LABELS[cfg.units]}:", None))
        items += list(OVERLAY_RGB.items())
    if cfg.probability is not None:
        items += prob_legend(prob_label(cfg))
    return items


def prob_label(cfg: AnimateConfig) -> str:
    """">=1 mm/h": the --probability threshold as the panels' titles state it (ASCII, as the
    overlay legend: the panel font has no ≥)."""
    if cfg.probability is None:
        return ""
    return f">={cfg.probability:g} {UNIT_LABELS[cfg.units]}"


def _title(panels: WindowPanels, cfg: AnimateConfig) -> str:
    t0 = panels.times[panels.n_in - 1]
    last = panels.start + panels.n_in + panels.n_out - 1
    title = f"{panels.source} · frames {panels.start}-{last} · t0 = {clock(t0, True)}"
    furniture = map_overlay(panels.georef, panels.x.shape[1:], cfg.map_grid)
    return title if furniture is None else f"{title} · {furniture[1]}; times UTC"


def _with_map(grid: Grid, panels: WindowPanels, cfg: AnimateConfig) -> Grid:
    """Map furniture drawn on the panels as shown (upscaled or shrunk), so that its lines
    are one pixel wide and its labels readable at any panel size."""
    shown = (grid.h, grid.w)
    georef = None if panels.georef is None else panels.georef.on_shape(shown)
    furniture = map_overlay(georef, shown, cfg.map_grid)
    grid.overlay = None if furniture is None else furniture[0]
    return grid


def _method_rgb(panels: WindowPanels, m: int, k: int, scale: ColourScale, event) -> np.ndarray:
    # hatched where the method gave no value or the truth has no data, as in Truth's panel
    pred, valid = panels.preds[m, k], panels.pred_valid[m, k] & panels.mask_y[k]
    if m < len(panels.probs) and panels.probs[m]:  # probability panel: its own 0-1 scale
        return _draw(pred, _PROB_LUT, valid, scale.nodata)
    if event is None:
        return colourise(pred, valid, scale)
    return contingency_rgb(pred, panels.y[k], valid & panels.mask_y[k], event, scale)


def _event(scale: ColourScale, cfg: AnimateConfig) -> np.ndarray | None:
    """(256,) bool: which pixel levels are events at the overlay threshold (value ≥ it)."""
    return None if cfg.overlay is None else scale.values >= cfg.overlay


def animation_grid(panels: WindowPanels, scale: ColourScale, cfg: AnimateConfig) -> Grid:
    """The layout of one animation frame: Input, Truth and one column per method."""
    titles = ["Input", "Truth", *panels.methods]
    return _with_map(Grid(1, len(titles), panels.x.shape[1:], cfg.scale,
                          title=_title(panels, cfg), col_titles=titles, scale=scale,
                          legend=_legend(scale, cfg), max_width=cfg.max_width), panels, cfg)


def animation_frames(panels: WindowPanels, scale: ColourScale, cfg: AnimateConfig):
    """Yield the n_in + n_out frames, each (height, width, 3) uint8, of the animation."""
    grid = animation_grid(panels, scale, cfg)
    event, n_in = _event(scale, cfg), panels.n_in
    inputs = [colourise(panels.x[i], panels.mask_x[i], scale) for i in range(n_in)]
    first = lead_text(panels.lead_s(n_in))
    for t in range(n_in + panels.n_out):
        canvas, lead = grid.canvas(), panels.lead_s(t)
        when = f"{lead_text(lead)} · {clock(panels.times[t])}"
        if t < n_in:
            for c in (0, 1):  # Input and Truth both show the observation
                grid.cell(canvas, 0, c, inputs[t])
                grid.stamp(canvas, 0, c, f"obs {when}")
            for m in range(len(panels.methods)):
                grid.stamp(canvas, 0, 2 + m, f"starts at {first}")
            what = f"observed {lead_text(lead)}" if lead else "t0 (last observation)"
        else:
            k = t - n_in
            grid.cell(canvas, 0, 0, inputs[-1])
            grid.stamp(canvas, 0, 0, f"t0 · {clock(panels.times[n_in - 1])} (held)")
            grid.cell(canvas, 0, 1, colourise(panels.y[k], panels.mask_y[k], scale))
            grid.stamp(canvas, 0, 1, when)
            for m in range(len(panels.methods)):
                grid.cell(canvas, 0, 2 + m, _method_rgb(panels, m, k, scale, event))
                grid.stamp(canvas, 0, 2 + m, when)
            what = f"forecast lead {lead_text(lead)}"
        grid.info(canvas, f"valid {clock(panels.times[t], True)} · {what}")
        yield canvas


def sheet_leads(leads: Sequence[int] | None, n_out: int) -> list[int]:
    """The 1-based lead steps to show: ``leads`` checked, or up to 4 evenly spaced."""
    if leads is None:
        return sorted({int(v) for v in np.rint(np.linspace(1, n_out, min(4, n_out)))})
    bad = [k for k in leads if not 1 <= k <= n_out]
    if bad:
        raise RadarcastError(f"--leads {bad[0]} is out of range: this window has leads 1..{n_out}")
    return list(leads)


def sheet_grid(panels: WindowPanels, scale: ColourScale, cfg: AnimateConfig) -> Grid:
    """The contact sheet's layout: a row per panel, a column per lead in ``cfg.leads``."""
    leads = sheet_leads(cfg.leads, panels.n_out)
    rows = ["Input", "Truth", *panels.methods]
    return _with_map(Grid(len(rows), len(leads), panels.x.shape[1:], cfg.scale,
                          title=_title(panels, cfg),
                          col_titles=[lead_text(panels.lead_s(panels.n_in - 1 + k)) for k in leads],
                          row_titles=rows, scale=scale, legend=_legend(scale, cfg), titles_above=1,
                          max_width=cfg.max_width), panels, cfg)


def contact_sheet(panels: WindowPanels, scale: ColourScale, cfg: AnimateConfig) -> np.ndarray:
    """(height, width, 3) uint8: rows Input/Truth/methods, columns the chosen lead times.

    The Input row shows observed frames spread evenly over the inputs, ending at t0.
    """
    leads, n_in = sheet_leads(cfg.leads, panels.n_out), panels.n_in
    grid = sheet_grid(panels, scale, cfg)
    canvas, event = grid.canvas(), _event(scale, cfg)
    step = lead_text(panels.lead_s(n_in)).lstrip("+")
    grid.info(canvas, f"Input: observations up to t0 · other rows: lead time after t0 "
                      f"(time step {step})")
    picks = range(n_in) if n_in < len(leads) else np.rint(np.linspace(0, n_in - 1, len(leads)))
    for c, i in enumerate(int(i) for i in picks):
        grid.cell(canvas, 0, c, colourise(panels.x[i], panels.mask_x[i], scale))
        grid.stamp(canvas, 0, c, f"obs {lead_text(panels.lead_s(i))} · {clock(panels.times[i])}")
    for c, lead in enumerate(leads):
        k = lead - 1
        when = f"{clock(panels.times[n_in + k])} UTC"
        grid.cell(canvas, 1, c, colourise(panels.y[k], panels.mask_y[k], scale))
        grid.stamp(canvas, 1, c, when)
        for m in range(len(panels.methods)):
            grid.cell(canvas, 2 + m, c, _method_rgb(panels, m, k, scale, event))
            grid.stamp(canvas, 2 + m, c, when)
    return canvas
