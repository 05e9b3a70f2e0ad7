"""Synthetic radar sequences with known motion, growth, decay and new cells.

Each sequence has a steady motion field, a translation plus a slow solid-body rotation::

    u(x, y) = U - ω (y - cy)        v(x, y) = V + ω (x - cx)        (pixels per time step)

whose flow map is known in closed form (:class:`Motion`). Storm cells are Gaussian
envelopes whose centres follow that flow, multiplied by a smooth periodic noise texture that
is advected with the same flow, so with ``growth=0`` every frame is exactly the previous one
carried by the field. With ``growth > 0`` each cell rises and decays over a lifetime of
``lifetime / growth`` steps (size following intensity) and new cells appear at random, which
is what extrapolation cannot predict. Values are HKO pixels (dBZ = 70·p/255 − 10).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from radarcast.config import check_finite
from radarcast.data.store import ProgressFn, format_time, parse_time
from radarcast.errors import RadarcastError

TIME_FORMAT = "%Y%m%dT%H%M%S"
TIME_PATTERN = TIME_FORMAT  # the --time-pattern that reads write_synth's PNG names


@dataclass(frozen=True)
class SynthConfig:
    """Sizes, time axis, randomness and the storm climate of a synthetic data set.

    ``speed`` is the largest translation in pixels per step (each sequence draws 0.5–1×);
    ``rotation`` the largest angular velocity in radians per step; ``cells`` the mean
    number of cells over the grid; ``growth`` 0 = frozen intensities (pure advection),
    1 = cells live ``lifetime`` steps, 4 = four times faster growth and decay.
    """

    sequences: int = 4
    frames: int = 40
    height: int = 128
    width: int = 128
    timestep_s: int = 300
    seed: int = 0
    growth: float = 1.0
    speed: float = 2.0
    rotation: float = 0.01
    cells: float = 8.0
    lifetime: float = 40.0
    start: str = "2024-01-01T00:00Z"
    gap_steps: int = 12  # empty time steps between sequences

    def check(self) -> None:
        for name in ("sequences", "frames", "height", "width", "timestep_s"):
            if getattr(self, name) < 1:
                raise RadarcastError(f"synth {name} must be ≥ 1, got {getattr(self, name)}")
        for name in ("growth", "speed", "rotation", "cells", "lifetime"):
            check_finite(getattr(self, name), f"synth {name}")
        if not 0 <= self.seed < 2**63:
            raise RadarcastError(f"synth seed must be a whole number in 0..2^63-1, got {self.seed}")
        if self.growth < 0 or self.speed < 0 or self.cells <= 0 or self.lifetime <= 0:
            raise RadarcastError("synth growth and speed must be ≥ 0, cells and lifetime > 0")
        # larger values describe no radar field and overflow numpy's Poisson draws
        # (--cells 1e308: "lam value too large") or allocate a cell per draw
        h, w = self.height, self.width
        if self.cells > h * w:
            raise RadarcastError(
                f"--cells must be ≤ {h * w} (one per pixel of the {h}x{w} grid), got {self.cells:g}"
            )
        if self.growth > self.lifetime:
            raise RadarcastError(f"--growth must be ≤ the lifetime {self.lifetime:g} (a cell "
                                 f"lives at least one step), got {self.growth:g}")  # fmt: skip
        if self.speed > max(h, w):
            raise RadarcastError(f"--speed must be ≤ {max(h, w)} px per step (the grid's size), "
                                 f"got {self.speed:g}")  # fmt: skip
        if abs(self.rotation) > math.pi:
            raise RadarcastError(
                f"--rotation must be in -π..π radians per step, got {self.rotation:g}"
            )
        if self.gap_steps < 1:
            raise RadarcastError(f"synth gap_steps must be ≥ 1, got {self.gap_steps}")


@dataclass(frozen=True)
class Motion:
    """A steady field of translation (u, v) plus rotation ω about (cx, cy); x is the column
    and y the row coordinate, in pixels; u, v in pixels per step, ω in radians per step."""

    u: float
    v: float
    omega: float
    cx: float
    cy: float

    def field(self, height: int, width: int) -> np.ndarray:
        """(2, H, W) float32 velocity: [0] = u along columns, [1] = v along rows (px/step)."""
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        return np.stack([self.u - self.omega * (y - self.cy), self.v + self.omega * (x - self.cx)])

    def _terms(self, t: float):
        wt = self.omega * t
        s = t * np.sinc(wt / np.pi)  # sin(ωt)/ω, finite as ω → 0
        c = t * np.sin(wt / 2) * np.sinc(wt / (2 * np.pi))  # (1 − cos ωt)/ω
        return np.cos(wt), np.sin(wt), s * self.u - c * self.v, c * self.u + s * self.v

    def flow(self, x, y, t: float):
        """Where points at (x, y) at time 0 are after ``t`` steps."""
        cos, sin, mx, my = self._terms(t)
        dx, dy = np.asarray(x) - self.cx, np.asarray(y) - self.cy
        return self.cx + cos * dx - sin * dy + mx, self.cy + sin * dx + cos * dy + my

    def back(self, x, y, t: float):
        """Where points at (x, y) at time ``t`` were at time 0 (inverse of :meth:`flow`)."""
        cos, sin, mx, my = self._terms(t)
        dx, dy = np.asarray(x) - self.cx - mx, np.asarray(y) - self.cy - my
        return self.cx + cos * dx + sin * dy, self.cy - sin * dx + cos * dy

    def warp(self, frame: np.ndarray, steps: float = 1.0) -> np.ndarray:
        """(H, W) frame carried ``steps`` time steps forward by the field (bilinear; 0 outside)."""
        from scipy.ndimage import map_coordinates

        h, w = frame.shape
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        x0, y0 = self.back(x, y, steps)
        return map_coordinates(frame.astype(np.float32), [y0, x0], order=1, cval=0.0)


class SynthSequence:
    """One sequence: its motion, cells and texture; :meth:`frame` renders time step t."""

    def __init__(self, config: SynthConfig, index: int) -> None:
        rng = np.random.default_rng([config.seed, index])
        h, w = config.height, config.width
        self.config, self.shape = config, (h, w)
        speed = config.speed * rng.uniform(0.5, 1.0)
        angle = rng.uniform(0, 2 * np.pi)
        self.motion = Motion(
            u=float(speed * np.cos(angle)),
            v=float(speed * np.sin(angle)),
            omega=float(rng.uniform(-1, 1) * config.rotation),
            cx=float(rng.uniform(0, w)),
            cy=float(rng.uniform(0, h)),
        )
        self.texture = smooth_noise(rng, _texture_size(h, w), 0.03 * min(h, w))
        self._make_cells(rng)
        self._yy = np.arange(h, dtype=np.float32)
        self._xx = np.arange(w, dtype=np.float32)
        gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
        self._grid = (gx, gy)

    def _make_cells(self, rng: np.random.Generator) -> None:
        cfg, (h, w) = self.config, self.shape
        margin = min(cfg.speed * cfg.frames, 2.0 * max(h, w)) + 0.15 * min(h, w)
        box = (w + 2 * margin) * (h + 2 * margin)
        n_ext = cfg.cells * box / (h * w)  # mean number alive over the extended box
        life = np.inf if cfg.growth == 0 else cfg.lifetime / cfg.growth
        n0 = rng.poisson(n_ext)
        births = [rng.uniform(-life, 0, n0) if np.isfinite(life) else np.full(n0, -np.inf)]
        if np.isfinite(life):
            nb = rng.poisson(n_ext / life * cfg.frames)
            births.append(rng.uniform(0, cfg.frames, nb))
        tb = np.concatenate(births)
        n = len(tb)
        xs = rng.uniform(-margin, w + margin, n)
        ys = rng.uniform(-margin, h + margin, n)
        tb_pos = np.where(np.isfinite(tb), np.maximum(tb, 0), 0)  # where the cell is at birth
        x0, y0 = self.motion.back(xs, ys, tb_pos)
        self.cells = {
            "x0": x0,
            "y0": y0,
            "birth": tb,
            "life": np.full(n, life),
            "peak": rng.uniform(160, 255, n),
            "sigma": rng.uniform(0.04, 0.10, n) * min(h, w),
        }

    def frame(self, t: int) -> np.ndarray:
        """(H, W) uint8 HKO pixels at time step ``t``."""
        from scipy.ndimage import map_coordinates

        c = self.cells
        with np.errstate(invalid="ignore"):
            phase = np.clip((t - c["birth"]) / c["life"], 0.0, 1.0)
        s = np.where(np.isfinite(c["life"]), np.sin(np.pi * phase), 1.0)  # (K,) 0..1
        x, y = self.motion.flow(c["x0"], c["y0"], t)
        sigma = c["sigma"] * (0.6 + 0.4 * s)
        h, w = self.shape
        on = (
            (s > 0.01)
            & (x > -3 * sigma)
            & (x < w + 3 * sigma)
            & (y > -3 * sigma)
            & (y < h + 3 * sigma)
        )
        a, x, y, sigma = (c["peak"] * s)[on], x[on], y[on], sigma[on]
        gy = np.exp(-((self._yy[None] - y[:, None]) ** 2) / (2 * sigma[:, None] ** 2))  # (K, H)
        gx = np.exp(-((self._xx[None] - x[:, None]) ** 2) / (2 * sigma[:, None] ** 2))  # (K, W)
        envelope = (gy * a[:, None]).T.astype(np.float32) @ gx.astype(np.float32)  # (H, W)
        tx, ty = self.motion.back(*self._grid, t)
        tex = map_coordinates(self.texture, [ty, tx], order=1, mode="grid-wrap")
        p = envelope * (0.45 + 0.55 * tex)
        p[p < 30] = 0
        return np.clip(np.rint(p), 0, 255).astype(np.uint8)

    def frames(self) -> np.ndarray:
        """(T, H, W) uint8: the whole sequence."""
        return np.stack([self.frame(t) for t in range(self.config.frames)])


def _texture_size(h: int, w: int) -> int:
    return int(2 ** np.ceil(np.log2(max(h, w, 16))))


def smooth_noise(rng: np.random.Generator, size: int, length: float) -> np.ndarray:
    """(size, size) float32 periodic noise in [0, 1], Gaussian-filtered to ``length`` px."""
    white = rng.standard_normal((size, size))
    k = np.fft.fftfreq(size)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    field = np.fft.ifft2(np.fft.fft2(white) * np.exp(-2 * (np.pi * length) ** 2 * k2)).real
    field -= field.min()
    return (field / max(field.max(), 1e-12)).astype(np.float32)


def sequence_start(config: SynthConfig, index: int) -> int:
    """Time (s since epoch) of sequence ``index``'s first frame; sequences are separated by
    ``gap_steps`` empty steps, so a reader sees a time gap between them."""
    step = (config.frames + config.gap_steps) * config.timestep_s
    return parse_time(config.start) + index * step


def generate(config: SynthConfig) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (sequence index, time in s since epoch, (H, W) uint8 frame), one at a time."""
    config.check()
    for i in range(config.sequences):
        seq, t0 = SynthSequence(config, i), sequence_start(config, i)
        for t in range(config.frames):
            yield i, t0 + t * config.timestep_s, seq.frame(t)


def true_motion(config: SynthConfig, index: int = 0) -> Motion:
    """The motion field of sequence ``index`` (cheap: only the random draws)."""
    return SynthSequence(config, index).motion


# --------------------------------------------------------------------------- writing
def _file_name(index: int, t: int) -> str:
    return f"seq{index:03d}_{format_time(t).replace('-', '').replace(':', '')[:-1]}.png"


MARKER = ".radarcast-synth"
"""Written into every synth folder: ``--overwrite`` replaces only folders that hold it."""
_OURS = re.compile(r"seq\d{3,}_\d{8}T\d{6}\.png|synth\.json|synth\.npy|" + re.escape(MARKER))


def check_replaceable(out: Path, shown: Path | None = None) -> None:
    """Refuse to replace ``out`` unless synth wrote it: its marker, and no file of anyone
    else (a mistyped OUT_DIR must never cost a user's files)."""
    shown = shown or out
    if not (out / MARKER).is_file():
        raise RadarcastError(
            f"{shown} was not written by radarcast synth (it has no {MARKER} marker); "
            "--overwrite only replaces synth's own folders: choose another OUT_DIR"
        )
    for p in sorted(out.iterdir()):
        if p.is_symlink() or not p.is_file() or not _OURS.fullmatch(p.name):
            raise RadarcastError(
                f"{shown} holds {p.name}, which radarcast synth did not write; "
                "--overwrite only replaces synth's own files: move it away or pick another OUT_DIR"
            )


def write_synth(
    out_dir: str | os.PathLike,
    config: SynthConfig = SynthConfig(),
    fmt: str = "png",
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> Path:
    """Write the sequences to ``out_dir``: one PNG per frame named
    ``seqNNN_YYYYmmddTHHMMSS.png`` (read back with ``--time-pattern %Y%m%dT%H%M%S``), or
    ``fmt='npy'`` one ``synth.npy`` stack (N, T, H, W). ``synth.json`` records the config and
    each sequence's motion. Files are written to a hidden sibling folder that is renamed into
    place at the end; a non-empty ``out_dir`` is refused without ``overwrite``, and even with
    it unless it is an earlier synth folder (its ``.radarcast-synth`` marker and only synth's
    own files): nothing else is ever deleted."""
    if fmt not in ("png", "npy"):
        raise RadarcastError(f"unknown synth format {fmt!r}; choose one of: png, npy")
    config.check()
    shown, out = Path(out_dir), Path(os.path.abspath(out_dir))
    if out.exists() and not out.is_dir():
        raise RadarcastError(f"{shown} exists and is not a folder")
    here = Path(os.path.abspath(os.getcwd()))
    if out == here or out in here.parents:
        raise RadarcastError(
            f"{shown} is the folder you are in, or holds it; give a new folder, e.g. {shown}/synth"
        )
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise RadarcastError(f"{shown} is not empty; pass --overwrite to replace it")
        check_replaceable(out, shown)
    if not out.parent.exists():
        raise RadarcastError(f"folder {out.parent} does not exist")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _write_frames(tmp, config, fmt, progress)
        _write_meta(tmp, config, fmt)
        if out.exists():
            old = out.with_name(f".{out.name}.{os.getpid()}.old")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_frames(folder: Path, config: SynthConfig, fmt: str, progress: ProgressFn | None) -> None:
    from PIL import Image

    total = config.sequences * config.frames
    stack = None
    if fmt == "npy":
        shape = (config.sequences, config.frames, config.height, config.width)
        stack = np.lib.format.open_memmap(
            folder / "synth.npy", mode="w+", dtype=np.uint8, shape=shape
        )
    for done, (i, t, frame) in enumerate(generate(config), 1):
        if stack is not None:
            stack[i, (done - 1) % config.frames] = frame
        else:
            Image.fromarray(frame, mode="L").save(folder / _file_name(i, t), compress_level=1)
        if progress is not None:
            progress(done, total)
    if stack is not None:
        stack.flush()
        del stack


def _write_meta(folder: Path, config: SynthConfig, fmt: str) -> None:
    meta = {
        "generator": "radarcast synth",
        "config": asdict(config),
        "format": fmt,
        "time_pattern": TIME_PATTERN if fmt == "png" else None,
        "units": "HKO pixels: dBZ = 70*p/255 - 10",
        "motion": [asdict(true_motion(config, i)) for i in range(config.sequences)],
        "motion_convention": "u along columns, v along rows, px per step; "
        "u = U - omega*(y - cy), v = V + omega*(x - cx)",
        "sequence_starts": [
            format_time(sequence_start(config, i)) for i in range(config.sequences)
        ],
    }
    (folder / "synth.json").write_text(json.dumps(meta, indent=2))
    (folder / MARKER).write_text("written by radarcast synth; --overwrite may replace it\n")
