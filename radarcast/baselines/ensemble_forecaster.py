"""The ROVER ensemble as a :class:`~radarcast.interface.Forecaster` with a member axis, and
the memory check that refuses, before allocating, an ensemble that would not fit."""

from __future__ import annotations

import os
import zlib
from dataclasses import fields

import numpy as np

from radarcast.baselines.ensemble_config import EnsembleConfig, rain_levels, stream_bytes
from radarcast.baselines.rover_ensemble import forecast_window, stream_centred, stream_window
from radarcast.errors import RadarcastError


def window_seed_of(x: np.ndarray) -> int:
    """A window's seed from its input pixels: the same inputs give the same members, other
    windows other ones, without the caller passing window indices."""
    return zlib.crc32(np.ascontiguousarray(x, dtype=np.float32).tobytes())


def make_forecaster(dataset, n_out: int, options: dict | None = None, centre=None):
    """The 'rover' ensemble :class:`~radarcast.interface.Forecaster` (``members`` set).

    ``options``: :class:`EnsembleConfig` fields, :class:`RoverConfig` fields and
    ``device``. ``timestep_min`` defaults to the dataset's step; ``pixel_km`` to its
    georeferenced pixel size where it has one, else 1 km. ``centre``: a deterministic
    Forecaster (e.g. a checkpoint's) whose forecast the members perturb instead of ROVER's
    extrapolation (:func:`~radarcast.baselines.rover_ensemble.stream_centred`).
    """
    from radarcast.baselines.rover import _device
    from radarcast.config import from_dict, to_dict
    from radarcast.interface import Forecaster
    from radarcast.kernels.flow import RoverConfig

    opts = dict(options or {})
    name = opts.pop("device", "auto")
    if name == "numpy":
        raise RadarcastError("--device numpy makes deterministic forecasts only; an ensemble "
                             "(--members) runs on --device cpu or cuda")
    device = _device(name)
    names = {f.name for f in fields(EnsembleConfig)}
    ens = {k: opts.pop(k) for k in list(opts) if k in names}
    if dataset is not None:
        ens.setdefault("timestep_min", dataset.timestep_s / 60.0)
        geo = getattr(dataset, "georef", None)
        if geo is not None:
            ens.setdefault("pixel_km", abs(float(geo.xpixelsize)) / 1000.0)
    cfg = from_dict(EnsembleConfig, ens, "ensemble")
    rc = from_dict(RoverConfig, opts, "rover")
    units = dataset.units if dataset is not None else None
    if dataset is not None:  # refuse now, before any window is read or written
        check_fits(cfg, n_out, dataset.height, dataset.width, whole=False)
    n_in = max(rc.frames, cfg.order + 1, centre.n_in if centre is not None else 0)

    def stream(x: np.ndarray, n: int):
        """One window (T, H, W) → (first member, lead, (m, H, W)) pieces."""
        seed = window_seed_of(x[-n_in:])
        if centre is None:
            return stream_window(x[-n_in:], n, cfg, rc, units, seed, device)
        return _stream_centred(x[-n_in:], centre(x[None, -n_in:])[0], cfg, rc, units, seed,
                               device)  # fmt: skip

    def predict(x: np.ndarray, n: int) -> np.ndarray:
        check_fits(cfg, n, *x.shape[-2:], whole=True)
        if centre is None:
            return np.stack([forecast_window(w, n, cfg, rc, units, window_seed_of(w), device)
                             for w in x])  # fmt: skip
        out = np.empty((len(x), cfg.members, n, *x.shape[-2:]), np.float32)
        for i, w in enumerate(x):
            for m0, lead, frames in stream(w, n):
                out[i, m0 : m0 + len(frames), lead] = frames
        return out

    config = {"method": "rover", "ensemble": to_dict(cfg), **to_dict(rc), "device": device.type}
    if centre is not None:
        config["centre"] = centre.config
    fc = Forecaster("rover" if centre is None else f"rover@{centre.name}", n_in, n_out, predict,
                    config, 1)  # fmt: skip
    fc.members, fc.stream = cfg.members, stream
    return fc


def available_bytes() -> int:
    """Memory the system can give now (MemAvailable), or the physical memory if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_fits(cfg: EnsembleConfig | int, n_out: int, h: int, w: int, whole: bool,
               itemsize: int = 4) -> int:  # fmt: skip
    """Refuse, before anything is allocated, an ensemble that would not fit in memory.

    ``cfg``: the ROVER ensemble's config, or a member count for an ensemble another library
    computes whole (pysteps' STEPS: ``itemsize`` 8, its float64 members; only the result is
    counted, so the check refuses what can never fit, never what might). ``whole``: all
    members and leads of a window are held at once (a live ensemble scored by evaluate or
    returned by a forecaster call); otherwise members are streamed and only one chunk is
    held. Returns the bytes needed.
    """
    members = cfg if isinstance(cfg, int) else cfg.members
    need = 0 if isinstance(cfg, int) else stream_bytes(cfg, h, w)
    if whole:
        need += members * n_out * h * w * itemsize
    have = available_bytes()
    if need > have:
        raise RadarcastError(
            f"--members {members} on a {h}x{w} grid with {n_out} leads needs about "
            f"{_gib(need)} GiB, only {_gib(have)} GiB is available"
        )
    return need


def check_file_fits(output, windows: int, members: int, n_out: int, h: int, w: int) -> int:
    """Refuse, before the file is created, an ensemble file larger than the free space of
    its folder. The size counted is the file's uint8 member array uncompressed, the most it
    can take (gzip makes rain ensembles about 4x smaller, dry ones more), so a refused run
    might have fit; ``--no-space-check`` runs it anyway. Returns the bytes counted."""
    import shutil
    from pathlib import Path

    need = int(windows) * int(members) * int(n_out) * int(h) * int(w)
    folder = Path(output).absolute().parent
    free = shutil.disk_usage(folder if folder.exists() else Path.cwd()).free
    if need > free:
        raise RadarcastError(
            f"{output}: {windows} window{'s' * (windows != 1)} × --members {members} × "
            f"{n_out} leads on a {h}x{w} grid need up to {_gib(need)} GiB (uncompressed), "
            f"only {_gib(free)} GiB is free in {folder} "
            "(fewer members or --limit; --no-space-check to try anyway)"
        )
    return need


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f}"


def _stream_centred(x, centre, cfg, rc, units, seed, device):
    """ROVER motion from x (T, H, W), members around ``centre`` (n, H, W), as numpy."""
    import torch

    from radarcast.kernels.flow import motion_coarse, pixel_scale

    t = torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)
    c = torch.as_tensor(np.asarray(centre, dtype=np.float32), device=device)
    gain, offset = pixel_scale(units)
    with torch.no_grad():
        flow = motion_coarse(t[None], rc, gain, offset)
        floor, zero = rain_levels(units, cfg)
        for m0, lead, frames in stream_centred(c, t, flow, rc.downsample, cfg, floor, seed,
                                               zero):  # fmt: skip
            yield m0, lead, frames.cpu().numpy()
