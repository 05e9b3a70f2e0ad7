"""Event thresholds of the categorical scores: presets, units, and their resolution."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from radarcast.data.units import UNIT_LABELS, Units, check_unit
from radarcast.errors import RadarcastError

THRESHOLD_PRESETS: dict[str, tuple[tuple[float, ...], str]] = {
    "hko7": ((0.5, 2.0, 5.0, 10.0, 30.0), "mmh"),  # Shi et al. 2017, HKO-7
    "dgmr": ((1.0, 4.0, 8.0), "mmh"),  # Ravuri et al. 2021
    "sevir": ((16.0, 74.0, 133.0, 160.0, 181.0, 219.0), "pixel"),  # Veillette et al. 2020, VIL
}
REFERENCE = "persistence"


@dataclass(frozen=True)
class Thresholds:
    """Thresholds as given (``values`` in ``unit``) and converted to pixels (ascending)."""

    values: tuple[float, ...]
    unit: str
    pixels: tuple[float, ...]

    @property
    def labels(self) -> list[str]:
        return [f"{v:g} {UNIT_LABELS[self.unit]}" for v in self.values]


def resolve_thresholds(
    units: Units, preset: str | None = None, values: Sequence[float] | None = None,
    unit: str | None = None, where: str = "dataset",
) -> Thresholds:
    """A preset name, or values with their unit → :class:`Thresholds` for ``units``."""
    if preset is not None and values is not None:
        raise RadarcastError("give --preset or --thresholds, not both")
    if preset is not None:
        if preset not in THRESHOLD_PRESETS:
            raise RadarcastError(
                f"unknown threshold preset {preset!r}; "
                f"choose one of: {', '.join(THRESHOLD_PRESETS)}"
            )
        values, unit = THRESHOLD_PRESETS[preset]
    if values is None:
        values, unit = THRESHOLD_PRESETS["hko7"] if units.has_zr else THRESHOLD_PRESETS["sevir"]
    unit = check_unit(unit or "mmh")
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim != 1 or not len(vals) or not np.all(np.isfinite(vals)):
        raise RadarcastError(f"thresholds must be finite numbers, got {list(values)}")
    vals = np.unique(vals)  # ascending, duplicates dropped
    if unit == "mmh" and not units.has_zr:
        raise RadarcastError(
            f"{where} has no Z-R relation (zr_a, zr_b): thresholds in mm/h cannot be converted; "
            "use --units dbz or pixel"
        )
    if unit == "mmh" and np.any(vals <= 0):
        raise RadarcastError(f"rain-rate thresholds must be > 0 mm/h, got {vals.tolist()}")
    units.check_reachable(vals, unit, "threshold", where)
    pixels = units.to_pixel(vals, unit)
    if not (np.all(np.isfinite(pixels)) and np.all(np.diff(pixels) > 0)):
        raise RadarcastError(
            f"{where}: thresholds {vals.tolist()} {unit} do not map to distinct pixel levels "
            f"on its scale (dBZ = {units.dbz_gain:g}·pixel {units.dbz_offset:+g})"
        )
    return Thresholds(tuple(float(v) for v in vals), unit, tuple(float(p) for p in pixels))
