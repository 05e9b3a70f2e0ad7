"""WGS 84 longitude and latitude of every pixel centre of a geo-referenced grid, the CF
files' ``lon``/``lat`` auxiliary coordinates: pyproj on a coarse lattice, bicubic between
(checked against pyproj midway), kept for the next write on the same grid and, in a live
nowcast, computed in a background thread beside the forecast (:func:`prefetch_lonlat`).
"""

from __future__ import annotations

import threading

import numpy as np

_LONLAT: dict = {}  # the last grid's lon/lat: watch mode writes the same grid every time
_LONLAT_LOCK = threading.Lock()


LONLAT_STEP = 4  # pyproj at every 4th pixel centre in x and y, cubic in between
LONLAT_TOL = 1e-9  # degrees (0.1 mm): the largest error accepted, else pyproj everywhere


def _cubic(nodes: np.ndarray, k: int, n: int, axis: int) -> np.ndarray:
    """Values at indices 0..n-1 along ``axis`` from ``nodes`` at indices 0, k, 2k, ...
    (at least 4 of them, the last ≥ n - 1): 4-point Lagrange interpolation."""
    m = nodes.shape[axis]
    i = np.arange(n)
    j = np.clip(i // k, 1, m - 3)  # stencil j-1 .. j+2
    t = (i - j * k) / k
    shape = [1, 1]
    shape[axis] = n
    weights = (
        -t * (t - 1) * (t - 2) / 6,
        (t + 1) * (t - 1) * (t - 2) / 2,
        -(t + 1) * t * (t - 2) / 2,
        (t + 1) * t * (t - 1) / 6,
    )
    out = np.take(nodes, j - 1, axis=axis) * weights[0].reshape(shape)
    for o in (1, 2, 3):
        out += np.take(nodes, j - 1 + o, axis=axis) * weights[o].reshape(shape)
    return out


def lonlat(georef, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) float64 WGS 84 lon/lat of the pixel centres, as ``georef.lonlat`` but ~5x
    cheaper: pyproj on every ``LONLAT_STEP``-th pixel centre, bicubic (Lagrange) in
    between, then pyproj again at the pixels midway between those nodes, where the
    interpolation errs most; when any differs by more than ``LONLAT_TOL`` degrees (a grid
    across the antimeridian or around a pole, a projection that is not smooth there), or
    anything is not finite, pyproj computes every pixel.

    On the MeteoSwiss grid the largest difference from pyproj everywhere is 3e-12°, on the
    FMI polar stereographic grid 2e-10° (tests/test_cf_lonlat.py)."""
    import pyproj

    h, w = shape
    k = LONLAT_STEP
    mx, my = -(-(w - 1) // k) + 1, -(-(h - 1) // k) + 1
    if min(mx, my) < 4:
        return georef.lonlat(shape)
    to_ll = pyproj.Transformer.from_crs(georef.crs(), "EPSG:4326", always_xy=True)
    x, y = georef.x((mx - 1) * k + 1), georef.y((my - 1) * k + 1)  # the grid, extended
    nodes = to_ll.transform(*np.meshgrid(x[::k], y[::k]))
    mid = k // 2
    exact = to_ll.transform(*np.meshgrid(x[mid:w:k], y[mid:h:k]))
    out = []
    for node, check in zip(nodes, exact, strict=True):
        full = _cubic(_cubic(np.asarray(node), k, w, 1), k, h, 0)
        err = np.abs(full[mid::k, mid::k] - check)
        if not (np.isfinite(node).all() and np.isfinite(err).all() and err.max() <= LONLAT_TOL):
            return georef.lonlat(shape)
        out.append(full)
    return out[0], out[1]


def _compute_lonlat(georef, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = lonlat(georef, shape)
    lon.setflags(write=False)
    lat.setflags(write=False)
    return lon, lat


def prefetch_lonlat(georef, shape: tuple[int, int], modules: tuple[str, ...] = ()) -> None:
    """Start computing ``georef``'s lon/lat of a ``shape`` grid in a background thread
    (pyproj releases the GIL), after importing ``modules`` there (the writer's netCDF4),
    so that a write later finds them ready: a nowcast starts this before its forecast.
    Nothing happens when that grid's are already there."""
    import importlib
    from concurrent.futures import Future

    key = (georef, tuple(shape))
    with _LONLAT_LOCK:
        if key in _LONLAT:
            return
        _LONLAT.clear()
        future: Future = Future()
        _LONLAT[key] = future

    def run() -> None:
        try:
            for name in modules:
                importlib.import_module(name)
            future.set_result(_compute_lonlat(georef, key[1]))
        except BaseException as e:  # handed to the writer, which raises it
            future.set_exception(e)

    threading.Thread(target=run, name="radarcast-lonlat").start()


def cached_lonlat(georef, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``georef.lonlat(shape)``, read-only, kept for the next call on the same grid (and
    computed in the background when :func:`prefetch_lonlat` started it)."""
    key = (georef, tuple(shape))
    with _LONLAT_LOCK:
        found = _LONLAT.get(key)
    if found is None:
        found = _compute_lonlat(georef, key[1])
        with _LONLAT_LOCK:
            _LONLAT.clear()
            _LONLAT[key] = found
        return found
    if isinstance(found, tuple):
        return found
    try:
        return found.result()
    except BaseException:
        with _LONLAT_LOCK:  # not kept: the next write tries again
            if _LONLAT.get(key) is found:
                _LONLAT.clear()
        raise
