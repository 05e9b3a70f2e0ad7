"""pysteps' nowcast methods as radarcast forecasters: ``pysteps:extrapolation``,
``pysteps:sprog``, ``pysteps:steps`` (an ensemble) and ``pysteps:anvil``.

Pixels are turned into rain rate (mm/h) with the dataset's scale and Z–R, then prepared as
pysteps' examples do: rain in dB (``dB_transform``, threshold 0.1 mm/h, zero value −15 dB;
NaN → −15 dB) for Lucas–Kanade motion, S-PROG and STEPS; rain rate for ANVIL and plain
extrapolation. Forecasts come back as rain rate and are turned into pixels with the same
scale (no rain → pixel 0); pysteps' NaN (what flows in from outside) stays NaN (unknown).
Needs ``pip install 'radarcast[pysteps]'`` (pysteps with OpenCV for its LK).

Reference: Pulkkinen, S. et al. (2019), Pysteps: an open-source Python library for
probabilistic precipitation nowcasting (v1.0), Geosci. Model Dev. 12, 4185–4219.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from radarcast.errors import RadarcastError

KINDS = ("extrapolation", "sprog", "steps", "anvil")
N_IN = 3  # input frames every one of them reads (LK motion; S-PROG, STEPS, ANVIL's AR(2))
ZERO_DB, RAIN_MIN = -15.0, 0.1


def _quiet():
    """pysteps prints from library code (its config path on import, every nowcast's
    settings and progress): kept off radarcast's stdout, whose lines are the command's."""
    return contextlib.redirect_stdout(io.StringIO())


def _pysteps():
    try:
        with _quiet():
            import pysteps  # noqa: F401
            from pysteps import extrapolation, motion, nowcasts
            from pysteps.utils import transformation
    except ImportError as e:
        raise RadarcastError(
            f"pysteps methods need pysteps: pip install 'radarcast[pysteps]' ({e})"
        ) from None
    return extrapolation, motion, nowcasts, transformation


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise RadarcastError(
            f"unknown pysteps method {kind!r}; choose one of: "
            + ", ".join(f"pysteps:{k}" for k in KINDS)
        )
    return kind


def nowcast(kind: str, x: np.ndarray, n_steps: int, units, *, members: int = 20, seed: int = 0,
            pixel_km: float = 1.0, timestep_min: float = 5.0) -> np.ndarray:  # fmt: skip
    """One window's pysteps nowcast.

    Parameters
    ----------
    kind
        One of :data:`KINDS`.
    x
        (T, H, W) pixels, NaN = missing (T ≥ 3 for S-PROG, STEPS and ANVIL).
    units
        The dataset's :class:`~radarcast.data.units.Units` (needs a Z–R relation).

    Returns
    -------
    (n_steps, H, W) float32 pixels, or (members, n_steps, H, W) for 'steps'.
    """
    with _quiet():
        return _nowcast(kind, x, n_steps, units, members, seed, pixel_km, timestep_min)


def _nowcast(kind, x, n_steps, units, members, seed, pixel_km, timestep_min) -> np.ndarray:
    extrapolation, motion, nowcasts, transformation = _pysteps()
    if not units.has_zr:
        raise RadarcastError("pysteps methods need a dataset with a Z-R relation (zr_a, zr_b)")
    rain = units.pixel_to_rain(np.asarray(x, dtype=np.float64))
    db, meta = transformation.dB_transform(rain, threshold=RAIN_MIN, zerovalue=ZERO_DB)
    db[~np.isfinite(db)] = ZERO_DB
    try:
        velocity = motion.get_method("LK")(db)
    except Exception as e:  # noqa: BLE001 - pysteps' own errors (e.g. OpenCV missing)
        raise RadarcastError(f"pysteps LK motion failed: {e}") from None
    if kind == "extrapolation":
        out = extrapolation.get_method("semilagrangian")(np.nan_to_num(rain[-1]), velocity,
                                                          n_steps)  # fmt: skip
    elif kind == "anvil":
        order = min(2, len(rain) - 2)  # ANVIL reads ar_order + 2 frames
        if order < 1:
            raise RadarcastError("pysteps:anvil needs at least 3 input frames")
        vil = np.nan_to_num(rain[-(order + 2) :])
        out = nowcasts.get_method("anvil")(vil, velocity, n_steps, ar_order=order)
    else:
        fn = nowcasts.get_method(kind)
        extra = {}
        if kind == "steps":
            extra = dict(n_ens_members=members, seed=seed, kmperpixel=pixel_km,
                         timestep=timestep_min)  # fmt: skip
        out_db = fn(db, velocity, n_steps, precip_thr=-10.0, **extra)
        out, _ = transformation.dB_transform(out_db, meta, threshold=-10.0, inverse=True)
    out = np.asarray(out, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        px = np.where(out > 0, units.rain_to_pixel(np.maximum(out, 1e-6)), 0.0)
    px = np.where(np.isfinite(out), np.clip(px, 0.0, 255.0), np.nan)
    return px.astype(np.float32)


def make_forecaster(kind: str, dataset, n_out: int, options: dict | None = None):
    """``pysteps:KIND`` as a :class:`~radarcast.interface.Forecaster` (one window per call).

    ``options``: ``members`` and ``seed`` (steps only), ``pixel_km`` (default: the
    dataset's georeferenced pixel size, else 1 km); ``device`` is accepted and ignored
    (pysteps runs on the CPU).
    """
    from radarcast.baselines.ensemble_forecaster import check_fits
    from radarcast.interface import Forecaster

    check_kind(kind)
    opts = dict(options or {})
    opts.pop("device", None)
    members = opts.pop("members", None)
    seed = int(opts.pop("seed", 0) or 0)
    pixel_km = opts.pop("pixel_km", None)
    if opts:
        raise RadarcastError(f"pysteps:{kind} takes no options {', '.join(opts)}")
    if kind != "steps" and members is not None:
        raise RadarcastError(f"pysteps:{kind} is deterministic; --members is for pysteps:steps")
    if kind == "steps":
        members = 20 if members is None else int(members)
        if members < 1:
            raise RadarcastError(f"--members must be a whole number ≥ 1, got {members}")
    if kind == "steps" and dataset is not None:  # STEPS holds its members whole, float64
        check_fits(members, n_out, dataset.height, dataset.width, whole=True, itemsize=8)
    units = dataset.units if dataset is not None else None
    if units is not None and not units.has_zr:
        raise RadarcastError("pysteps methods need a dataset with a Z-R relation (zr_a, zr_b)")
    geo = getattr(dataset, "georef", None) if dataset is not None else None
    if pixel_km is None:
        pixel_km = abs(float(geo.xpixelsize)) / 1000.0 if geo is not None else 1.0
    step_min = dataset.timestep_s / 60.0 if dataset is not None else 5.0
    _pysteps()  # a missing pysteps is refused now, not at the first window

    def predict(x: np.ndarray, n: int) -> np.ndarray:
        kw = dict(members=members or 1, seed=seed, pixel_km=pixel_km, timestep_min=step_min)
        return np.stack([nowcast(kind, w, n, units, **kw) for w in x])

    config = {"method": f"pysteps:{kind}", "pixel_km": pixel_km, "timestep_min": step_min,
              "members": members, "seed": seed}  # fmt: skip
    fc = Forecaster(f"pysteps:{kind}", N_IN, n_out, predict, config, 1)
    fc.members = members if kind == "steps" else None
    return fc
