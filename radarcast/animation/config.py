"""The animation's settings (:class:`AnimateConfig`) and output formats."""

from __future__ import annotations

import math
from dataclasses import dataclass

from radarcast.animation.colours import (
    COLOUR_MAPS,
)
from radarcast.animation.geo import MAP_GRIDS
from radarcast.data.units import check_unit
from radarcast.errors import RadarcastError

FORMATS = (".gif", ".mp4", ".png")
VIDEO_HINT = "pip install 'radarcast[video]'"
MAX_PANEL = 8192  # px per panel side after --scale
MIN_WIDTH = 200  # px: the narrowest --max-width that still leaves room for the legend


@dataclass(frozen=True)
class AnimateConfig:
    """How to draw one window.

    ``overlay`` is a threshold in ``units``; ``leads`` are 1-based lead steps for the contact
    sheet columns (None: up to 4, evenly spaced); ``n_in``/``n_out`` None take the first
    forecast file's lengths, else the dataset's; ``stride`` makes ``--window K`` count every
    stride-th window of the split; ``max_width`` bounds the output's width in pixels (the
    panels shrink to fit; None: no bound).
    """

    units: str = "dbz"
    cmap: str = "radar"
    fps: float = 4.0
    overlay: float | None = None
    scale: int = 2
    leads: tuple[int, ...] | None = None
    n_in: int | None = None
    n_out: int | None = None
    split: str = "test"
    stride: int = 1
    max_width: int | None = 1600
    probability: float | None = None  # threshold in ``units``: probability-of-exceedance panels
    members: int | None = None  # ensemble members shown (live rover: the ensemble size)
    map_grid: str = "km"  # geo-referenced panels: km lines, lonlat graticule, or none
    reproject: bool = False  # CF-netCDF forecasts on another grid sampled onto the dataset's

    def __post_init__(self) -> None:
        check_unit(self.units)
        if self.members is not None and self.members < 1:
            raise RadarcastError(f"--members must be a whole number ≥ 1, got {self.members}")
        if self.probability is not None and not math.isfinite(self.probability):
            raise RadarcastError(f"--probability must be a finite threshold in --units "
                                 f"{self.units}, got {self.probability}")
        if self.stride < 1:
            raise RadarcastError(f"--stride must be ≥ 1, got {self.stride}")
        if self.max_width is not None and self.max_width < MIN_WIDTH:
            raise RadarcastError(f"--max-width must be ≥ {MIN_WIDTH} px (or 0 for no limit), "
                                 f"got {self.max_width}")
        if self.cmap not in COLOUR_MAPS:
            choices = ", ".join(COLOUR_MAPS)
            raise RadarcastError(f"unknown --cmap {self.cmap!r}; choose one of: {choices}")
        if self.map_grid not in MAP_GRIDS:
            raise RadarcastError(f"unknown --map {self.map_grid!r}; choose one of: "
                                 f"{', '.join(MAP_GRIDS)}")
        if not 0 < self.fps <= 60:
            raise RadarcastError(f"--fps must be in (0, 60], got {self.fps}")
        if not 1 <= self.scale <= 16:
            raise RadarcastError(f"--scale must be an integer 1..16, got {self.scale}")
        if self.leads is not None and (not self.leads or min(self.leads) < 1):
            raise RadarcastError(f"--leads must be lead steps ≥ 1, got {self.leads}")
