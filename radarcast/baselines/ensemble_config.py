"""Settings and sizing of the ROVER ensemble (:mod:`radarcast.baselines.rover_ensemble`).

:class:`EnsembleConfig` and its choices; how many members a chunk holds and the memory a
window's stream needs (:func:`member_chunk`, :func:`stream_bytes`); the incremental mask's
radius; and the rain threshold and dry value on a dataset's pixel scale
(:func:`rain_levels`, :func:`rain_floor`). Plain Python: nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from radarcast.errors import RadarcastError

SPECTRA = ("observed", "radial")
MOTION = ("bps", "none")
MASKS = ("incremental", "none")
BYTES_PER_PIXEL_MEMBER = 80  # complex state ×2, noise, field, match temporaries, warp grid, mask


@dataclass(frozen=True)
class EnsembleConfig:
    """Settings of the ROVER ensemble (docs/ensembles.md).

    Attributes
    ----------
    members
        Ensemble size M ≥ 1.
    seed
        Seed of every random draw; a window's members depend on (seed, its input pixels).
    order
        1 or 2: AR order of each band's evolution (2 needs three input frames).
    bands
        Octave bands the AR coefficients are estimated in (STEPS' cascade levels).
    spectrum
        Noise amplitude: 'observed' (the latest frame's 2-D amplitude spectrum, anisotropy
        kept) or 'radial' (its radially averaged power spectrum).
    motion
        'bps': Bowler et al. (2006) motion perturbations; 'none': ROVER's motion for all.
    pixel_km, timestep_min
        Grid spacing (km) and time step (minutes) to turn bps' km/h into pixels per step.
    rain_mmh
        Rain/no-rain threshold (mm/h) where the dataset has a Z–R relation (STEPS'
        ``precip_thr`` of pysteps' examples, 0.1 mm/h): only values at or above it are rain
        in the members. None: ``rain_dbz`` always.
    rain_dbz
        The threshold (dBZ) without a Z–R relation (or with ``rain_mmh`` None).
    dry_db
        Drier pixels enter the evolved field ``dry_db`` dB of rain rate below the threshold
        (dry_db·b dBZ, b the Z–R exponent), as pysteps' zerovalue −15 dB sits 5 dB below its
        0.1 mm/h threshold: the rain edge stays a step in the field, its noise and its
        correlations (0: dry pixels at the threshold itself).
    mask
        'incremental': STEPS' precipitation mask — each member's rain at a lead may only
        fall within ``mask_radius`` pixels of its rain at the previous lead, with a grey
        rim of ``mask_rim`` pixels (the observed rain area at the first lead); 'none'.
    mask_radius, mask_rim
        Dilation radius (None: pysteps' int((timestep_min / pixel_km − 1) / 2), its
        ``mask_f`` = 1) and grey rim width (pysteps' ``mask_rim`` = 10), in pixels.
    noise_gain
        Factor on each band's AR innovation σ (1: the Yule–Walker σ that keeps the band's
        variance). Above 1 the members decorrelate from the extrapolation faster than the
        observed correlations say: with 1 the ensembles were under-dispersive (spread/skill
        0.79 at lead 1–12 against STEPS' 0.85); 1.4 is the best of 1.2 / 1.4 / 1.7 on the
        benchmark's five windows (docs/ensembles.md: tuned there, not checked elsewhere).
    chunk_bytes
        Memory budget of one chunk of members (bytes); fewer members per chunk if needed.
    """

    members: int = 20
    seed: int = 0
    order: int = 2
    bands: int = 8
    spectrum: str = "observed"
    motion: str = "bps"
    pixel_km: float = 1.0
    timestep_min: float = 5.0
    rain_mmh: float | None = 0.1
    rain_dbz: float = 10.0
    dry_db: float = 0.0
    mask: str = "incremental"
    mask_radius: int | None = None
    mask_rim: int = 10
    noise_gain: float = 1.4
    chunk_bytes: float = 1.0e9

    def __post_init__(self) -> None:
        if isinstance(self.members, bool) or int(self.members) != self.members or self.members < 1:
            raise RadarcastError(f"--members must be a whole number ≥ 1, got {self.members}")
        if self.order not in (1, 2):
            raise RadarcastError(f"ensemble: order must be 1 or 2, got {self.order}")
        if self.bands < 1:
            raise RadarcastError(f"ensemble: bands must be ≥ 1, got {self.bands}")
        if self.spectrum not in SPECTRA:
            raise RadarcastError(
                f"ensemble: unknown spectrum {self.spectrum!r}; choose one of: {', '.join(SPECTRA)}"
            )
        if self.motion not in MOTION:
            raise RadarcastError(
                f"ensemble: unknown motion {self.motion!r}; choose one of: {', '.join(MOTION)}"
            )
        if self.rain_mmh is not None and not self.rain_mmh > 0:
            raise RadarcastError(f"ensemble: rain_mmh must be > 0, got {self.rain_mmh}")
        if self.mask not in MASKS:
            raise RadarcastError(
                f"ensemble: unknown mask {self.mask!r}; choose one of: {', '.join(MASKS)}"
            )
        if (self.mask_radius is not None and self.mask_radius < 0) or self.mask_rim < 0:
            raise RadarcastError("ensemble: mask_radius and mask_rim must be ≥ 0")
        if not (isinstance(self.noise_gain, int | float) and 0 < self.noise_gain < 10):
            raise RadarcastError(f"ensemble: noise_gain must be in (0, 10), got {self.noise_gain}")
        if not (self.pixel_km > 0 and self.timestep_min > 0 and self.chunk_bytes > 0):
            raise RadarcastError("ensemble: pixel_km, timestep_min and chunk_bytes must be > 0")


def member_chunk(cfg: EnsembleConfig, h: int, w: int) -> int:
    """Members generated at once on an (h, w) grid under ``cfg.chunk_bytes``."""
    return int(max(1, min(cfg.members, cfg.chunk_bytes // (BYTES_PER_PIXEL_MEMBER * h * w))))


def mask_radius(cfg: EnsembleConfig) -> int:
    """Dilation radius (pixels) of the incremental mask: ``cfg.mask_radius``, or pysteps'
    int((n − 1) / 2) with n = timestep_min / pixel_km (rain moving 1 km per minute)."""
    if cfg.mask_radius is not None:
        return int(cfg.mask_radius)
    return max(0, int((cfg.timestep_min / cfg.pixel_km - 1) / 2))


def stream_bytes(cfg: EnsembleConfig, h: int, w: int) -> int:
    """Peak working memory (bytes, estimate) of streaming one window's members."""
    return member_chunk(cfg, h, w) * BYTES_PER_PIXEL_MEMBER * h * w


def rain_levels(units, cfg: EnsembleConfig) -> tuple[float, float]:
    """(floor, zero) on the dataset's scale: the pixel value of the rain threshold
    (``cfg.rain_mmh`` through the Z–R relation, else ``cfg.rain_dbz``) and of dry pixels,
    ``cfg.dry_db`` dB of rain rate lower (× the Z–R exponent b in dBZ; Marshall–Palmer's
    1.6 without a Z–R relation)."""
    gain = 70 / 255 if units is None else units.dbz_gain
    zr = units is not None and units.has_zr
    b = units.zr_b if zr else 1.6
    if zr and cfg.rain_mmh is not None:
        floor = max(0.0, float(units.rain_to_pixel(cfg.rain_mmh)))
    else:
        floor = rain_floor(units, cfg.rain_dbz)
    return floor, floor - cfg.dry_db * b / gain


def rain_floor(units, rain_dbz: float) -> float:
    """The pixel value of ``rain_dbz`` on the dataset's scale (HKO-7's when None)."""
    gain, offset = (70 / 255, -10.0) if units is None else (units.dbz_gain, units.dbz_offset)
    return max(0.0, (rain_dbz - offset) / gain)
