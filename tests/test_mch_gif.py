"""MeteoSwiss AQC GIFs read natively give pysteps' mch_gif frames and grid exactly."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

from radarcast.data.mch_gif import read_mch_gif
from radarcast.data.pysteps_reader import metadata_georef, pysteps_to_pixels
from radarcast.data.raw import ReadOptions
from radarcast.data.units import get_preset

MCH = Path(__file__).resolve().parents[1].parent / "shared/data/pysteps-data/radar/mch/20150515"
PATTERN = "AQC%y%j%H%M?_"


@pytest.fixture(scope="module")
def gifs() -> list[Path]:
    files = sorted(MCH.glob("AQC*.gif"))
    if not files:
        pytest.skip("MeteoSwiss sample data not present")
    # a wet frame, the dataset's last, and one with missing (255) pixels if any
    return files[-3:]


def test_native_frames_equal_pysteps_importer(gifs):
    with contextlib.redirect_stdout(io.StringIO()):
        pio = pytest.importorskip("pysteps.io")
    importer = pio.get_method("mch_gif", "importer")
    target = get_preset("hko")
    opts = ReadOptions(time_pattern=PATTERN, pysteps_importer="mch_gif", target=target)
    native = list(read_mch_gif(gifs, opts))
    assert len(native) == len(gifs)
    cache: dict = {}
    for raw, path in zip(native, gifs, strict=True):
        values, _, meta = importer(str(path), product="AQC", unit="mm", accutime=5.0)
        frame, valid = pysteps_to_pixels(values, meta, target, str(path))
        assert raw.frame.any()  # wet: the comparison is not of two empty maps
        np.testing.assert_array_equal(raw.frame, frame)
        np.testing.assert_array_equal(valid if raw.mask is None else raw.mask, valid)
        assert raw.georef == metadata_georef(meta, cache, str(path))
        assert raw.time is not None


def test_nowcast_reads_mch_without_pysteps(gifs):
    """The live path (read_latest, pysteps:mch_gif) imports neither pysteps, torch nor h5py."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from radarcast.nowcast import read_latest\n"
        "from radarcast.data.preprocess import PreprocessConfig\n"
        f"cfg = PreprocessConfig(format='pysteps:mch_gif', time_pattern={PATTERN!r})\n"
        "inp = read_latest(sys.argv[1:], 3, cfg)\n"
        "assert inp.georef is not None and inp.frames.shape == (3, 640, 710)\n"
        "print('pysteps' in sys.modules, 'torch' in sys.modules, 'h5py' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code, *map(str, gifs)], capture_output=True,
                       text=True, check=True)  # fmt: skip
    assert r.stdout.split() == ["False", "False", "False"]


FMI = MCH.parents[1] / "fmi/pgm/20170509"


def test_native_fmi_frames_equal_pysteps_importer():
    from radarcast.data.fmi_pgm import read_fmi_pgm

    files = sorted(FMI.glob("*.pgm.gz"))[-2:]
    if not files:
        pytest.skip("FMI sample data not present")
    with contextlib.redirect_stdout(io.StringIO()):
        pio = pytest.importorskip("pysteps.io")
    importer = pio.get_method("fmi_pgm", "importer")
    target = get_preset("hko")
    opts = ReadOptions(time_pattern="%Y%m%d%H%M", pysteps_importer="fmi_pgm", target=target)
    cache: dict = {}
    for raw, path in zip(read_fmi_pgm(files, opts), files, strict=True):
        values, _, meta = importer(str(path), gzipped=True)
        frame, valid = pysteps_to_pixels(values, meta, target, str(path))
        assert raw.frame.any() and not valid.all()  # wet, with missing pixels
        np.testing.assert_array_equal(raw.frame, frame)
        np.testing.assert_array_equal(raw.mask, valid)
        assert raw.georef == metadata_georef(meta, cache, str(path))
