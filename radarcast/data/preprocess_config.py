"""The settings of ``preprocess`` (:class:`PreprocessConfig`): scales, grid, times, splits."""

from __future__ import annotations

from dataclasses import dataclass, replace

from radarcast.data.schema import DEFAULT_FRACTIONS
from radarcast.data.units import PYSTEPS_SERVICES, Units, get_preset
from radarcast.errors import RadarcastError, check_size

# working memory of one resized frame: the float32 result, its rounded copy, the uint8
# frame, the resampled mask (float64) and the boolean mask
RESIZE_BYTES_PER_PIXEL = 4 + 4 + 1 + 8 + 1


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything ``radarcast preprocess`` does, besides the inputs and the output name.

    ``crop`` is (y0, y1, x0, x1): rows y0..y1-1 and columns x0..x1-1 of the input grid.
    ``downsample`` K > 1 averages K×K blocks; ``resize`` (H, W) resamples bilinearly; give
    one of them. ``start`` is the time of the first frame when names carry no time.
    """

    format: str = "auto"
    input_scale: str | None = None  # preset of the raw values; None: the target scale
    scale: str = "hko"  # preset of the dataset's pixel scale
    dbz_gain: float | None = None
    dbz_offset: float | None = None
    zr_a: float | None = None
    zr_b: float | None = None
    nodata: tuple[int, ...] | None = None  # raw values meaning missing (input preset's if None)
    time_pattern: str | None = None
    timestep_s: int = 300
    start: str = "2000-01-01T00:00Z"
    downsample: int = 1
    resize: tuple[int, int] | None = None
    crop: tuple[int, int, int, int] | None = None
    split: tuple[float, float, float] = DEFAULT_FRACTIONS
    n_in: int = 5
    n_out: int = 15
    cikm_level: int = 0
    max_start_end_corr: float | None = None
    overwrite: bool = False
    compression_level: int = 1
    crs: str | None = None  # CRS of plain images (EPSG:..., PROJ or WKT), with ``bounds``
    bounds: tuple[float, float, float, float] | None = None  # outer edges x0, y0, x1, y1

    def zr_source(self) -> tuple[float | None, float | None, str]:
        """The dataset's Z–R (a, b) and where it comes from, first found of: ``--zr-a/--zr-b``;
        the weather service of ``--input-scale`` or of a pysteps importer (its own Z–R, so
        that mm/h thresholds mean what the service means); the ``--scale`` preset."""
        if self.zr_a is not None or self.zr_b is not None:
            if self.zr_a is None or self.zr_b is None:
                raise RadarcastError("give both --zr-a and --zr-b, or neither")
            return self.zr_a, self.zr_b, "--zr-a/--zr-b"
        kind, _, importer = self.format.partition(":")
        if self.input_scale is not None:
            service, origin = self.input_scale, f"--input-scale {self.input_scale}"
        elif kind == "pysteps" and importer in PYSTEPS_SERVICES:
            service, origin = PYSTEPS_SERVICES[importer], f"pysteps importer {importer}"
        else:
            service, origin = self.scale, f"--scale {self.scale}"
        units = get_preset(service)
        return units.zr_a, units.zr_b, origin

    def target_units(self) -> Units:
        """The dataset's scale: the ``scale`` preset's gain/offset (or their overrides) with
        the Z–R of :meth:`zr_source`."""
        a, b, _ = self.zr_source()
        base = get_preset(self.scale).with_(dbz_gain=self.dbz_gain, dbz_offset=self.dbz_offset)
        return replace(base, zr_a=a, zr_b=b)

    def input_units(self) -> Units:
        """The raw values' scale (the target's when ``input_scale`` is None) and nodata."""
        base = self.target_units() if self.input_scale is None else get_preset(self.input_scale)
        return base.with_(nodata=None if self.nodata is None else tuple(self.nodata))

    def check(self) -> None:
        if self.downsample < 1:
            raise RadarcastError(f"--downsample must be ≥ 1, got {self.downsample}")
        if self.downsample > 1 and self.resize is not None:
            raise RadarcastError("give --downsample or --resize, not both")
        if self.resize is not None and min(self.resize) < 1:
            raise RadarcastError(f"--resize must be positive HxW, got {self.resize}")
        if self.resize is not None:
            h, w = self.resize  # checked before any frame of that size is allocated
            check_size(h * w * RESIZE_BYTES_PER_PIXEL, f"--resize {h}x{w}")
        if self.crop is not None:
            y0, y1, x0, x1 = self.crop
            if not (0 <= y0 < y1 and 0 <= x0 < x1):
                raise RadarcastError(
                    f"--crop wants y0:y1,x0:x1 with y0 < y1 and x0 < x1, got {self.crop}"
                )
        for v in self.nodata or ():
            if not 0 <= v <= 255:
                raise RadarcastError(f"--nodata values must be 0..255, got {v}")
        if self.timestep_s <= 0:
            raise RadarcastError(f"--timestep must be positive, got {self.timestep_s}")
        if (self.crs is None) != (self.bounds is None):
            raise RadarcastError("give --crs and --bounds together")
        if self.crs is not None and self.format.startswith("pysteps:"):
            # they would replace the product's own geo-reference without a word
            raise RadarcastError(
                f"--crs/--bounds are for plain images; --format {self.format} takes the "
                "geo-reference from the product"
            )
