"""HDF5 datasets whose bytes live outside the file are refused (issue 21, item 2).

External raw storage or a virtual dataset let a crafted "dataset" make radarcast read any
file (here /etc/passwd) as radar frames; before the fix both opened and were scored.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from radarcast.errors import RadarcastError


def _rebuild(src: Path, dst: Path, name: str, make) -> Path:
    """A copy of ``src`` in which dataset ``name`` is replaced by ``make(file, name, data)``."""
    with h5py.File(src) as a, h5py.File(dst, "w") as b:
        b.attrs.update(dict(a.attrs))
        for k in a:
            if k == name:
                make(b, k, a[k])
            else:
                a.copy(k, b)
    return dst


def _external(target: str):
    def make(f, name, old):
        size = int(np.prod(old.shape)) * old.dtype.itemsize
        raw = Path(target)
        if not raw.exists():  # the test writes its own raw file next to the output
            raw.write_bytes(old[()].tobytes())
        f.create_dataset(name, shape=old.shape, dtype=old.dtype,
                         external=[(str(raw), 0, h5py.h5f.UNLIMITED if size else 0)])
        for k, v in old.attrs.items():
            f[name].attrs[k] = v
    return make


def _virtual(source_file: Path):
    def make(f, name, old):
        layout = h5py.VirtualLayout(shape=old.shape, dtype=old.dtype)
        layout[...] = h5py.VirtualSource(str(source_file), name, shape=old.shape)
        f.create_virtual_dataset(name, layout)
    return make


@pytest.mark.parametrize("name", ["frames", "mask", "time"])
def test_dataset_with_external_raw_storage_is_refused(tiny_dataset, tmp_path, name):
    from radarcast.data.store import open_dataset

    target = "/etc/passwd" if name == "mask" and Path("/etc/passwd").exists() else \
        str(tmp_path / f"{name}.raw")
    bad = _rebuild(tiny_dataset, tmp_path / "bad.h5", name, _external(target))
    with pytest.raises(RadarcastError) as e:
        open_dataset(bad)
    msg = str(e.value)
    assert msg == (f"{bad}: dataset {name!r} is stored in external raw files; "
                   "radarcast reads only data stored in the file itself"), msg


def test_dataset_with_virtual_frames_is_refused(tiny_dataset, tmp_path):
    from radarcast.data.store import open_dataset

    bad = _rebuild(tiny_dataset, tmp_path / "bad.h5", "frames", _virtual(tiny_dataset))
    with h5py.File(bad) as f:
        assert f["frames"][0].max() > 0  # h5py itself reads the other file's frames
    with pytest.raises(RadarcastError, match=r"bad.h5: dataset 'frames' is a virtual dataset"):
        open_dataset(bad)


def test_forecast_with_external_or_virtual_pred_is_refused(tiny_dataset, tmp_path):
    from radarcast.data.forecast_file import open_forecast
    from radarcast.data.forecast_writer import ForecastWriter
    from radarcast.data.store import open_dataset

    good = tmp_path / "fc.h5"
    with ForecastWriter(good, open_dataset(tiny_dataset), [0, 1], method="m", config={},
                        n_in=3, n_out=4, split=None) as w:
        w.write(np.ones((2, 4, 64, 64), np.uint8))
        w.finish()
    open_forecast(good).close()
    ext = _rebuild(good, tmp_path / "ext.h5", "pred", _external(str(tmp_path / "pred.raw")))
    virt = _rebuild(good, tmp_path / "virt.h5", "pred", _virtual(good))
    for bad, kind in ((ext, "stored in external raw files"), (virt, "a virtual dataset")):
        with pytest.raises(RadarcastError, match=f"{bad.name}: dataset 'pred' is {kind}"):
            open_forecast(bad)


def test_external_link_to_another_file_is_refused(tiny_dataset, tmp_path):
    from radarcast.data.store import open_dataset

    def link(f, name, old):
        f[name] = h5py.ExternalLink(str(tiny_dataset), name)

    bad = _rebuild(tiny_dataset, tmp_path / "bad.h5", "frames", link)
    with pytest.raises(RadarcastError, match=r"'frames' is a link to another file"):
        open_dataset(bad)
