"""Fuzzing every input the tool reads: images, .npy/.npz, CIKM text, dataset and forecast
HDF5 files, checkpoints and TOML configs — truncated, mutated, wrong dtype/shape/attributes,
NaN/inf, huge declared dimensions, empty.

The contract: the library either succeeds or raises RadarcastError (never another
exception), and leaves nothing under the output name; the CLI exits 1 with one line on
stderr, no traceback, in bounded time, writing nothing. Hypothesis runs a small budget in CI;
the ``nightly`` marker runs a large one (``RADARCAST_NIGHTLY=1 pytest -m nightly``).
Cases whose header declares huge sizes run in a subprocess with an address-space limit, so a
regression fails with an error instead of exhausting the machine's memory.
"""

from __future__ import annotations

import io
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from radarcast.data.store import DatasetWriter, open_dataset
from radarcast.data.units import Units
from radarcast.errors import RadarcastError

REPO = Path(__file__).resolve().parents[1]
CI_EXAMPLES = int(os.environ.get("RADARCAST_FUZZ_EXAMPLES", "15"))
NIGHTLY_EXAMPLES = int(os.environ.get("RADARCAST_FUZZ_NIGHTLY", "400"))
NIGHTLY = [
    pytest.mark.nightly,
    pytest.mark.skipif(
        not os.environ.get("RADARCAST_NIGHTLY"),
        reason="large fuzzing budget: RADARCAST_NIGHTLY=1 pytest -m nightly",
    ),
]
BUDGETS = [CI_EXAMPLES, pytest.param(NIGHTLY_EXAMPLES, marks=NIGHTLY, id="nightly")]
COUNT_FILE = os.environ.get("RADARCAST_FUZZ_COUNT")
CLI_SECONDS = 60  # a bad input must be refused well within this
AS_LIMIT = 6 * 2**30  # address space of the huge-header subprocesses (torch maps ~2 GiB)


def _settings(budget: int):
    return settings(
        max_examples=budget,
        deadline=None,
        derandomize=budget == CI_EXAMPLES,  # CI: the same cases every run
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Text that only another library's internals produce; a radarcast message never contains it.
FOREIGN = ("weights_only", "PyTorch", "torch.serialization", "WeightsUnpickler", "Traceback",
           "HDF5-DIAG", "h5py.", "PIL.", "pysteps.")


def _lib(fn, *args, **kwargs):
    """Call ``fn``: success or RadarcastError are both fine; anything else fails the test."""
    if COUNT_FILE:  # one line per case tried, for the figures in docs/reliability.md
        with open(COUNT_FILE, "a") as fh:
            fh.write(f"{os.environ.get('PYTEST_CURRENT_TEST', '?').split(' ')[0]}\n")
    try:
        return fn(*args, **kwargs)
    except RadarcastError as e:
        msg = str(e)
        assert msg and "\n" not in msg.strip(), f"multi-line message: {msg!r}"
        foreign = [m for m in FOREIGN if m in msg]
        assert not foreign, f"another library's text reaches the user ({foreign}): {msg!r}"
        return e


def _leftovers(folder: Path, name: str) -> list[Path]:
    return [p for p in folder.iterdir() if p.name == name or p.name.startswith(f".{name}.")]


def _preprocess_lib(inputs: list[Path], folder: Path, **cfg):
    """preprocess(): a readable dataset, or RadarcastError with nothing left behind."""
    from radarcast.data.preprocess import PreprocessConfig, preprocess

    out = folder / "out.h5"
    cfg = {"n_in": 1, "n_out": 1, **cfg}  # short windows: the write path, not the refusal
    result = _lib(preprocess, [str(p) for p in inputs], out, PreprocessConfig(**cfg))
    if isinstance(result, RadarcastError):
        assert _leftovers(folder, "out.h5") == []
    else:
        with open_dataset(out) as ds:
            assert ds.frames(0, ds.n_frames).dtype == np.uint8
        out.unlink()
    return result


def _cli(*args, cwd: Path, limit_as: int | None = None) -> subprocess.CompletedProcess:
    def preexec():
        if limit_as:
            resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))

    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "radarcast", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CLI_SECONDS * 2,
        preexec_fn=preexec,
    )
    r.seconds = time.monotonic() - t0
    return r


def _assert_refused(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr
    assert r.seconds < CLI_SECONDS


# --------------------------------------------------------------------------- fixtures
def _write_dataset(path: Path, n: int = 40, size: int = 32, **kw) -> Path:
    yy, xx = np.mgrid[0:size, 0:size]
    units = Units()
    with DatasetWriter(path, units=units, timestep_s=300, n_in=2, n_out=2, command="t", **kw) as w:
        for i in range(n):
            blob = 200 * np.exp(-((xx - 8 - 0.4 * i) ** 2 + (yy - 12) ** 2) / 20.0)
            w.append(blob.astype(np.uint8), 1_600_000_000 + 300 * i)
        w.finish()
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A good dataset, a forecast file of it and a checkpoint that runs on it."""
    import torch

    from radarcast.checkpoint import FORMAT
    from radarcast.config import to_dict
    from radarcast.forecasters import resolve, write_forecast
    from radarcast.models import build_model

    folder = tmp_path_factory.mktemp("fuzz")
    ds_path = _write_dataset(folder / "good.h5")
    with open_dataset(ds_path) as ds:
        write_forecast(ds, resolve("persistence", ds), folder / "fc.h5", split="all")
        model = build_model("convlstm", {"hidden": (2,)})
        ckpt = {
            "format": FORMAT, "version": "test", "model": "convlstm",
            "model_config": to_dict(model.config), "state_dict": model.state_dict(),
            "units": ds.units.to_dict(), "n_in": 2, "n_out": 2,
        }
    torch.save(ckpt, folder / "good.pt")
    return {"folder": folder, "dataset": ds_path, "forecast": folder / "fc.h5",
            "checkpoint": folder / "good.pt", "ckpt": ckpt}


def _png_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _image_samples() -> dict[str, bytes]:
    a = (np.arange(64 * 48).reshape(48, 64) % 251).astype(np.uint8)
    out = {}
    for suffix, fmt in ((".png", "PNG"), (".gif", "GIF"), (".tif", "TIFF"), (".pgm", "PPM"),
                        (".bmp", "BMP")):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format=fmt)
        out[suffix] = buf.getvalue()
    out[".pgm.gz"] = zlib.compress(out[".pgm"])  # not gzip framing: must be refused cleanly
    return out


IMAGES = _image_samples()


def _mutate(data: bytes, cut: float, flips: list[tuple[float, int]]) -> bytes:
    b = bytearray(data[: int(len(data) * cut)])
    for pos, value in flips:
        if b:
            b[int(pos * (len(b) - 1))] = value
    return bytes(b)


MUTATIONS = st.tuples(
    st.floats(0.0, 1.0),
    st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=6),
)


# --------------------------------------------------------------------------- images
@pytest.mark.parametrize("budget", BUDGETS)
def test_mutated_images(budget):
    @_settings(budget)
    @given(st.sampled_from(sorted(IMAGES)), MUTATIONS)
    def check(suffix, mutation):
        from radarcast.data.readers import read_image

        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / f"x{suffix}"
            path.write_bytes(_mutate(IMAGES[suffix], *mutation))
            out = _lib(read_image, path)
            if not isinstance(out, RadarcastError):
                assert out.ndim == 2 and out.dtype == np.uint8

    check()


def _png_declaring(height: int, width: int) -> bytes:
    """A PNG whose header declares height×width, followed by a tiny real image's data."""
    small = _png_bytes(np.zeros((4, 4), np.uint8))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return small[:8] + chunk + small[33:]


@pytest.mark.parametrize("shape", [(100_000, 100_000), (2**31 - 1, 1), (1, 0)])
def test_image_header_with_huge_or_empty_size(tmp_path, shape):
    from radarcast.data.readers import read_image

    path = tmp_path / "big.png"
    path.write_bytes(_png_declaring(*shape))
    with pytest.raises(RadarcastError, match="big.png"):
        read_image(path)


@pytest.mark.parametrize("mode", ["1", "L", "P", "I", "I;16", "F"])
def test_single_channel_image_modes(tmp_path, mode):
    from radarcast.data.readers import read_image

    Image.new(mode, (5, 3)).save(tmp_path / "m.tif")
    out = read_image(tmp_path / "m.tif")
    assert out.shape == (3, 5) and out.dtype == np.uint8


# --------------------------------------------------------------------------- numpy
DTYPES = ["u1", "i1", "i2", "u2", "i8", "f4", "f8", "f2", "?", "c8", "U2", "S1", "O", "V2"]
SPECIAL = [0, 1, 255, 256, -1, np.nan, np.inf, -np.inf, 0.5, 1e30]


@st.composite
def arrays(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=5)))
    n = int(np.prod(shape)) if shape else 1
    raw = draw(st.lists(st.sampled_from(SPECIAL), min_size=n, max_size=n))
    if dtype.kind == "O":
        return np.array(raw + [None], dtype=object)[:n].reshape(shape)
    if dtype.kind == "V":
        return np.zeros(shape, dtype)
    with np.errstate(all="ignore"):
        if dtype.kind in "iub":
            vals = np.nan_to_num(np.array(raw, dtype=float), nan=0, posinf=0, neginf=0)
            return vals.astype(np.int64).astype(dtype).reshape(shape)
        return np.array(raw, dtype=float).astype(dtype).reshape(shape)


@pytest.mark.parametrize("budget", BUDGETS)
def test_numpy_arrays_through_preprocess(budget):
    @_settings(budget)
    @given(arrays(), st.sampled_from(["npy", "npz"]))
    def check(a, kind):
        with tempfile.TemporaryDirectory() as d:
            folder = Path(d)
            path = folder / f"a.{kind}"
            if kind == "npy":
                np.save(path, a, allow_pickle=True)
            else:
                np.savez(path, a=a, b=a)
            _preprocess_lib([path], folder)

    check()


@pytest.mark.parametrize("budget", BUDGETS)
def test_mutated_numpy_files(budget):
    good = np.random.default_rng(0).integers(0, 256, (3, 6, 7), dtype=np.uint8)
    npy = io.BytesIO()
    np.save(npy, good)
    npz = io.BytesIO()
    np.savez_compressed(npz, a=good, b=good[::-1])
    samples = {"npy": npy.getvalue(), "npz": npz.getvalue()}

    @_settings(budget)
    @given(st.sampled_from(["npy", "npz"]), MUTATIONS)
    def check(kind, mutation):
        with tempfile.TemporaryDirectory() as d:
            folder = Path(d)
            path = folder / f"a.{kind}"
            path.write_bytes(_mutate(samples[kind], *mutation))
            _preprocess_lib([path], folder)

    check()


def _npy_header(shape: tuple, descr: str = "|u1") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue() + b"\0" * 64


HUGE_SHAPES = [(10**6, 10**6, 10**6), (3, 100_000, 100_000), (10**12, 4, 4), (2, 1, 2**40)]


@pytest.mark.parametrize("shape", HUGE_SHAPES, ids=str)
@pytest.mark.parametrize("kind", ["npy", "npz"])
def test_numpy_header_declaring_huge_shape(tmp_path, kind, shape):
    path = tmp_path / f"h.{kind}"
    if kind == "npy":
        path.write_bytes(_npy_header(shape))
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("a.npy", _npy_header(shape))
    r = _cli("preprocess", path, "-o", tmp_path / "out.h5", cwd=tmp_path, limit_as=AS_LIMIT)
    _assert_refused(r, f"h.{kind}")
    assert _leftovers(tmp_path, "out.h5") == []


# --------------------------------------------------------------------------- CIKM
CIKM_VALUES = 15 * 4 * 101 * 101
TOKENS = st.sampled_from(
    ["0", "7", "255", "256", "-1", "1.5", "nan", "9" * 25, "-" + "9" * 25, "x", "", "0x1f", "1e3"]
)


@st.composite
def cikm_lines(draw):
    head = draw(st.sampled_from(["id,1,", "id,", "", "id,1,2,", ",,", "\xff,1,"]))
    count = draw(st.sampled_from([0, 1, CIKM_VALUES - 1, CIKM_VALUES, CIKM_VALUES + 1]))
    special = draw(st.lists(st.tuples(st.integers(0, max(count - 1, 0)), TOKENS), max_size=3))
    values = ["3"] * count
    for i, tok in special:
        if count:
            values[i] = tok
    return head + " ".join(values)


@pytest.mark.parametrize("budget", BUDGETS)
def test_cikm_lines(budget):
    @_settings(budget)
    @given(st.lists(cikm_lines(), min_size=1, max_size=2), st.integers(0, 4))
    def check(lines, level):
        with tempfile.TemporaryDirectory() as d:
            folder = Path(d)
            path = folder / "c.txt"
            path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))
            _preprocess_lib([path], folder, cikm_level=level)

    check()


# --------------------------------------------------------------------------- dataset files
BAD_VALUES = st.sampled_from(
    ["abc", b"\xff", "", np.nan, np.inf, -1, 0, 2**62, 1.5, np.array([1, 2]),
     np.array([], dtype=np.int64), True]
)
ATTRS = ["schema", "timestep_s", "dbz_gain", "dbz_offset", "zr_a", "zr_b", "n_in", "n_out"]
DATASETS = ["frames", "time", "segment", "split", "mask"]


@st.composite
def replacements(draw):
    """A wrong object for one of the file's datasets."""
    dtype = draw(st.sampled_from(["u1", "i8", "f4", "?", "S2", "group", "scalar"]))
    shape = tuple(draw(st.lists(st.integers(0, 45), min_size=1, max_size=4)))
    fill = draw(st.sampled_from([0, 1, 255, -3, np.nan]))
    return dtype, shape, fill


def _replace(f: h5py.File, name: str, spec) -> None:
    dtype, shape, fill = spec
    del f[name]
    if dtype == "group":
        f.create_group(name)
        return
    if dtype == "scalar":
        f.create_dataset(name, data=5)
        return
    with np.errstate(invalid="ignore"):
        data = np.full(shape, fill, dtype=float)
        if dtype == "S2":
            data = data.astype("S2")
        else:
            data = np.nan_to_num(data, nan=0) if dtype[0] in "ui?" else data
            data = data.astype(dtype)
    f.create_dataset(name, data=data)


def _use_dataset(path: Path) -> None:
    """Everything later commands do with a dataset, through the library."""
    from radarcast.evaluation import evaluate

    with open_dataset(path) as ds:
        ds.identity()
        ds.split_counts()
        starts = ds.windows()
        for s in starts[:2]:
            ds.window(int(s))
        ds.frames(0, ds.n_frames)
        ds.masks(0, ds.n_frames)
        evaluate(ds, split="all", limit=3)


@pytest.mark.parametrize("budget", BUDGETS)
def test_mutated_dataset_files(budget, base):
    @_settings(budget)
    @given(
        st.lists(st.tuples(st.sampled_from(ATTRS), BAD_VALUES), max_size=2),
        st.lists(st.tuples(st.sampled_from(DATASETS), replacements()), max_size=2),
        st.lists(st.sampled_from(ATTRS + DATASETS), max_size=1),
    )
    def check(attrs, datasets, removed):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "m.h5"
            shutil.copy(base["dataset"], path)
            with h5py.File(path, "a") as f:
                for k, v in attrs:
                    f.attrs[k] = v
                for name, spec in datasets:
                    _replace(f, name, spec)
                for name in removed:
                    if name in f.attrs:
                        del f.attrs[name]
                    elif name in f:
                        del f[name]
            _lib(_use_dataset, path)

    check()


@pytest.mark.parametrize("budget", BUDGETS)
def test_damaged_dataset_bytes(budget, base):
    data = base["dataset"].read_bytes()

    @_settings(budget)
    @given(MUTATIONS)
    def check(mutation):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "m.h5"
            path.write_bytes(_mutate(data, *mutation))
            _lib(_use_dataset, path)

    check()


def _huge_dataset(path: Path, t: int, h: int, w: int, static_mask: bool = True) -> None:
    """A file whose datasets DECLARE t frames of h×w (nothing is allocated on disk)."""
    _write_dataset(path, n=4, size=8)
    with h5py.File(path, "a") as f:
        for name in ("frames", "time", "segment", "split", "mask"):
            del f[name]
        f.create_dataset("frames", shape=(t, h, w), dtype=np.uint8,
                         chunks=(1, min(h, 256), min(w, 256)))
        for name, dt in (("time", np.int64), ("segment", np.int32), ("split", np.uint8)):
            f.create_dataset(name, shape=(t,), dtype=dt, chunks=(min(t, 4096),))
        mshape = (h, w) if static_mask else (t, h, w)
        f.create_dataset("mask", shape=mshape, dtype=bool, chunks=(1,) * (len(mshape) - 2)
                         + (min(h, 256), min(w, 256)), fillvalue=True)


@pytest.mark.parametrize(
    "t,h,w", [(10**9, 8, 8), (4, 10**6, 10**6), (2**40, 1, 1)], ids=["frames", "grid", "both"]
)
def test_dataset_declaring_huge_sizes(tmp_path, t, h, w):
    path = tmp_path / "huge.h5"
    _huge_dataset(path, t, h, w)
    r = _cli("info", path, cwd=tmp_path, limit_as=AS_LIMIT)
    _assert_refused(r, "huge.h5")


# --------------------------------------------------------------------------- forecast files
FC_ATTRS = ["schema", "method", "config", "n_in", "n_out", "split", "dataset_hash"]
FC_DATASETS = ["pred", "start", "valid"]


@pytest.mark.parametrize("budget", BUDGETS)
def test_mutated_forecast_files(budget, base):
    from radarcast.evaluation import evaluate

    @_settings(budget)
    @given(
        st.lists(st.tuples(st.sampled_from(FC_ATTRS), BAD_VALUES | st.just("{not json")),
                 max_size=2),
        st.lists(st.tuples(st.sampled_from(FC_DATASETS), replacements()), max_size=2),
        st.lists(st.sampled_from(FC_ATTRS + ["pred", "start"]), max_size=1),
    )
    def check(attrs, datasets, removed):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "f.h5"
            shutil.copy(base["forecast"], path)
            with h5py.File(path, "a") as f:
                for k, v in attrs:
                    f.attrs[k] = v
                for name, spec in datasets:
                    if name in f:
                        _replace(f, name, spec)
                    else:
                        f.create_dataset(name, data=np.ones(spec[1], bool))
                for name in removed:
                    if name in f.attrs:
                        del f.attrs[name]
                    elif name in f:
                        del f[name]
            _lib(evaluate, base["dataset"], forecasts=[path], split="all")

    check()


@pytest.mark.parametrize("budget", BUDGETS)
def test_damaged_forecast_bytes(budget, base):
    from radarcast.evaluation import evaluate

    data = base["forecast"].read_bytes()

    @_settings(budget)
    @given(MUTATIONS)
    def check(mutation):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "f.h5"
            path.write_bytes(_mutate(data, *mutation))
            _lib(evaluate, base["dataset"], forecasts=[path], split="all")

    check()


# --------------------------------------------------------------------------- checkpoints
CKPT_VALUES = st.sampled_from(
    ["abc", 5, -1, 0, None, [1, 2], {"zzz": 1}, {}, float("nan"), 10**7, {"hidden": [10**7]},
     {"hidden": "x"}, {"dbz_gain": -1.0}]
)
CKPT_FIELDS = ["format", "model", "model_config", "state_dict", "units", "n_in", "n_out"]


def _run_checkpoint(path: Path, dataset: Path) -> None:
    from radarcast.forecasters import resolve

    with open_dataset(dataset) as ds:
        fc = resolve(str(path), ds, options={"device": "cpu"})
        x = ds.frames(0, 2)[None].astype(np.float32)
        y = fc(x)
        assert y.shape[0] == 1 and y.dtype == np.float32


@pytest.mark.parametrize("budget", BUDGETS)
def test_mutated_checkpoints(budget, base):
    import torch

    @_settings(budget)
    @given(st.lists(st.tuples(st.sampled_from(CKPT_FIELDS), CKPT_VALUES | st.just(...)),
                    min_size=1, max_size=2))
    def check(changes):
        data = dict(base["ckpt"])
        for k, v in changes:
            if v is ...:
                data.pop(k, None)
            else:
                data[k] = v
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "c.pt"
            torch.save(data, path)
            _lib(_run_checkpoint, path, base["dataset"])

    check()


@pytest.mark.parametrize("budget", BUDGETS)
def test_damaged_checkpoint_bytes(budget, base):
    data = base["checkpoint"].read_bytes()

    @_settings(budget)
    @given(MUTATIONS)
    def check(mutation):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "c.pt"
            path.write_bytes(_mutate(data, *mutation))
            _lib(_run_checkpoint, path, base["dataset"])

    check()


# --------------------------------------------------------------------------- TOML configs
TRAIN_KEYS = ["model", "preset", "model_config", "n_in", "n_out", "crop", "batch_size", "lr",
              "steps", "epochs", "val_every", "loss", "schedule", "device", "workers",
              "val_windows", "warmup_steps", "grad_clip", "weight_decay", "seed", "zzz"]
TOML_VALUES = st.sampled_from(
    ["0", "-3", "1", "2", "1e400", "nan", "inf", "'abc'", "''", "[]", "[0]", "['x']", "true",
     "{}", "{hidden = 'x'}", "{hidden = [0]}", "{zzz = 1}", "1.5", "99999999999999999999",
     "'convlstm'", "'convlstm-1'", "'cpu'", "'mse'", "'bmse'"]
)


@st.composite
def toml_texts(draw):
    lines = [f"{k} = {v}" for k, v in draw(st.lists(st.tuples(st.sampled_from(TRAIN_KEYS),
                                                              TOML_VALUES), max_size=3))]
    junk = draw(st.sampled_from(["", "", "[section]\n", "= 1\n", "a = \n", "\x00", "\udcff"]))
    return junk + "\n".join(dict.fromkeys(lines))


@pytest.mark.parametrize("budget", BUDGETS)
def test_train_toml_configs(budget, base):
    """A config file goes through load_toml, resolve and the first steps of train()."""
    from radarcast.config import load_toml, resolve
    from radarcast.training import TrainConfig, _check_config, train

    fixed = {"preset": "convlstm-1", "model_config": {"hidden": [2]}, "n_in": 2, "n_out": 2,
             "crop": 8, "batch_size": 2, "steps": 1, "val_every": 1, "val_windows": 1,
             "workers": 0, "device": "cpu", "warmup_steps": 1}

    @_settings(budget)
    @given(toml_texts())
    def check(text):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "c.toml"
            path.write_bytes(text.encode("utf-8", "surrogateescape"))

            def run():
                toml = load_toml(path)
                cfg = resolve(TrainConfig, {**fixed, **toml},
                              {"datasets": (str(base["dataset"]),), "out": str(Path(d) / "run")})
                if cfg.steps > 3 or (cfg.epochs or 0) > 1 or cfg.batch_size > 8:
                    return cfg  # a valid long run: the config is what is under test here
                if cfg.workers > 2:  # never fork many processes here; the check must refuse
                    return _check_config(cfg)
                return train(cfg)

            _lib(run)

    check()


def test_huge_worker_count_is_refused_before_forking():
    from radarcast.training import TrainConfig, _check_config

    with pytest.raises(RadarcastError, match="workers"):
        _check_config(TrainConfig(datasets=("d.h5",), workers=10**20))


@pytest.mark.parametrize("budget", BUDGETS)
def test_rover_toml_configs(budget, base):
    from radarcast.baselines.rover import RoverConfig
    from radarcast.config import load_toml, resolve
    from radarcast.forecasters import resolve as resolve_method

    keys = ["frames", "transform", "dbz_floor", "smoothness", "robust", "levels", "downsample",
            "warps", "iterations", "outside", "zzz"]

    @_settings(budget)
    @given(st.lists(st.tuples(st.sampled_from(keys), TOML_VALUES | st.sampled_from(
        ["'linear'", "'nan'", "'zero'", "3"])), max_size=3))
    def check(pairs):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "r.toml"
            path.write_text("\n".join(dict.fromkeys(f"{k} = {v}" for k, v in pairs)))

            def run():
                from radarcast.config import to_dict

                cfg = resolve(RoverConfig, load_toml(path), {}, "rover")
                if cfg.iterations * cfg.warps > 200:
                    return cfg
                with open_dataset(base["dataset"]) as ds:
                    fc = resolve_method("rover", ds, options={**to_dict(cfg), "device": "cpu"})
                    return fc(ds.frames(0, fc.n_in)[None])

            _lib(run)

    check()


# --------------------------------------------------------------------------- the CLI
def _cli_case(case: str, base: dict, d: Path) -> tuple[list, str, Path]:
    """(arguments, text the error must hold, output that must not appear) for one case."""
    ds, out = base["dataset"], d / "out"
    if case == "png-truncated":
        (d / "in").mkdir()
        (d / "in" / "a.png").write_bytes(_png_bytes(np.zeros((8, 8), np.uint8))[:40])
        return ["preprocess", d / "in", "-o", out], "a.png", out
    if case == "npz-truncated":
        buf = io.BytesIO()
        np.savez(buf, a=np.zeros((3, 4, 4), np.uint8))
        (d / "a.npz").write_bytes(buf.getvalue()[:-30])
        return ["preprocess", d / "a.npz", "-o", out], "a.npz", out
    if case == "npy-inf":
        np.save(d / "a.npy", np.full((3, 4, 4), np.inf))
        return ["preprocess", d / "a.npy", "-o", out, "--n-in", "1", "--n-out", "1"], "a.npy", out
    if case == "cikm-overflow":
        (d / "c.txt").write_text("a,1," + "9" * 30 + "\n")
        return ["preprocess", d / "c.txt", "-o", out], "c.txt", out
    if case == "dataset-attr":
        shutil.copy(ds, d / "d.h5")
        with h5py.File(d / "d.h5", "a") as f:
            f.attrs["timestep_s"] = "five minutes"
        return ["forecast", d / "d.h5", "-o", out], "d.h5", out
    if case == "dataset-truncated":
        (d / "d.h5").write_bytes(ds.read_bytes()[:3000])
        return ["evaluate", d / "d.h5", "--out", out], "d.h5", out
    if case == "dataset-empty":
        (d / "d.h5").write_bytes(b"")
        return ["animate", d / "d.h5", "-o", d / "out.gif"], "d.h5", d / "out.gif"
    if case == "forecast-config":
        shutil.copy(base["forecast"], d / "f.h5")
        with h5py.File(d / "f.h5", "a") as f:
            f.attrs["config"] = "{not json"
        return ["evaluate", ds, "-f", d / "f.h5", "--split", "all", "--out", out], "f.h5", out
    if case == "forecast-shape":
        shutil.copy(base["forecast"], d / "f.h5")
        with h5py.File(d / "f.h5", "a") as f:
            del f["pred"]
            f.create_dataset("pred", data=np.zeros((len(f["start"]), 2, 4, 4), np.uint8))
        return ["evaluate", ds, "-f", d / "f.h5", "--split", "all", "--out", out], "f.h5", out
    if case == "checkpoint-truncated":
        (d / "c.pt").write_bytes(base["checkpoint"].read_bytes()[:4000])
        return ["forecast", ds, "--method", d / "c.pt", "-o", out], "c.pt", out
    if case == "checkpoint-units":
        import torch

        torch.save({**base["ckpt"], "units": {"zzz": 1}}, d / "c.pt")
        return ["forecast", ds, "--method", d / "c.pt", "-o", out], "c.pt", out
    if case == "train-toml":
        (d / "c.toml").write_text("model_config = 'abc'\n")
        return ["train", ds, "--config", d / "c.toml", "--out", out], "model_config", out
    if case == "rover-toml":
        (d / "r.toml").write_bytes(b"[rover]\nframes = \xff\n")
        return ["rover", ds, "--config", d / "r.toml", "-o", out], "r.toml", out
    raise AssertionError(case)


CLI_CASES = ["png-truncated", "npz-truncated", "npy-inf", "cikm-overflow", "dataset-attr",
             "dataset-truncated", "dataset-empty", "forecast-config", "forecast-shape",
             "checkpoint-truncated", "checkpoint-units", "train-toml", "rover-toml"]
# run as `python -m radarcast` (its real exit code and stderr): a damaged HDF5 file and a
# damaged checkpoint; the other cases run the same app in-process (conftest.run_cli)
SUBPROCESS_CASES = {"dataset-truncated", "checkpoint-truncated"}


def _cli_in_process(*args, cwd: Path) -> subprocess.CompletedProcess:
    t0 = time.monotonic()
    r = run_cli(*args, cwd=cwd)
    r.seconds = time.monotonic() - t0
    return r


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_refuses_bad_input_in_one_line(case, base, tmp_path):
    args, needle, out = _cli_case(case, base, tmp_path)
    run = _cli if case in SUBPROCESS_CASES else _cli_in_process
    r = run(*args, cwd=tmp_path)
    if case == "npy-inf":  # inf is read as missing, like NaN: a valid (all-masked) dataset
        assert r.returncode == 0, r.stderr
        assert open_dataset(out).masks(0, 3).sum() == 0
        return
    _assert_refused(r, needle)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]



# --------------------------------------------------------------------------- usage errors
def _numeric_options() -> list[tuple[str, str, str]]:
    """(command, option, "whole number" or "number") for every int/float option of the CLI."""
    import typing

    import typer

    from radarcast.cli import app

    out = []
    for name, cmd in sorted(typer.main.get_command(app).commands.items()):
        for p in cmd.params:
            ann = getattr(p, "type_descriptor", None)
            kinds = set(typing.get_args(ann.annotation) or (ann.annotation,)) if ann else set()
            if p.param_type_name != "option" or kinds.isdisjoint({int, float}):
                continue
            long = max(p.opts, key=len)
            out.append((name, long, "whole number" if int in kinds else "number"))
    return out


NUMERIC_OPTIONS = _numeric_options()


def _assert_usage_line(r, command: str, *needles: str) -> None:
    """A usage error: exit 1, one line starting 'error:', pointing at the command's --help."""
    r.seconds = 0.0
    _assert_refused(r, *needles, f"(see radarcast {command} --help)".replace("  ", " "))
    assert r.stderr.startswith("error: ") and "Usage:" not in r.stderr and "╭" not in r.stderr


def test_every_numeric_option_refuses_a_non_number_in_one_line():
    """``--members abc``: one line naming the option and the value, exit 1 (Click's usage box
    and exit 2 before); every int/float option of every command, before the command runs."""
    assert len(NUMERIC_OPTIONS) > 50 and ("forecast", "--members", "whole number") in \
        NUMERIC_OPTIONS  # fmt: skip
    for command, option, kind in NUMERIC_OPTIONS:
        r = run_cli(command, option, "abc")
        _assert_usage_line(r, command, f"{option}: 'abc' is not a {kind}")


@pytest.mark.parametrize("budget", BUDGETS)
def test_fuzzed_option_values_are_one_line(budget):
    """Any text given to a numeric option is accepted by the parser or refused in one line
    naming the option (what the command then does with a parsed number is tested above)."""
    from radarcast.cli._app import usage_line  # noqa: F401  (the one place that formats them)

    @_settings(budget)
    @given(st.sampled_from(NUMERIC_OPTIONS), st.text(min_size=1, max_size=12).filter(
        lambda s: not s.startswith("-") and "\x00" not in s))
    def check(option, value):
        command, flag, kind = option
        if COUNT_FILE:
            with open(COUNT_FILE, "a") as fh:
                fh.write("test_fuzzed_option_values_are_one_line\n")
        try:
            (int if kind == "whole number" else float)(value)
            return  # a number: the parser takes it
        except ValueError:
            pass
        r = run_cli(command, flag, value)
        _assert_usage_line(r, command, f"{flag}: ", "is not a")

    check()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["forecast"], "missing argument DATASET"),
        (["forecast", "x.h5"], "--output is required"),
        (["forecast", "x.h5", "-o", "y.h5", "--no-such-flag"], "no such option: --no-such-flag"),
        (["forecast", "x.h5", "-o", "y.h5", "--members"], "'--members' requires an argument"),
        (["forecast", "x.h5", "-o", "y.h5", "extra"], "unexpected extra argument"),
        (["evaluate", "x.h5", "--bootstrap-unit", "day"], "--bootstrap-unit: 'day' is not one"),
        (["--no-such-flag"], "no such option: --no-such-flag"),
        (["no-such-command"], "no such command 'no-such-command'"),
    ],
)
def test_usage_errors_are_one_line_exit_1(args, needle, tmp_path):
    command = next((a for a in args if not a.startswith("-")), "") if args[0] != \
        "no-such-command" else ""  # fmt: skip
    r = run_cli(*args, cwd=tmp_path)
    _assert_usage_line(r, command, needle)
    assert list(tmp_path.iterdir()) == []


def test_usage_error_through_python_m_radarcast(tmp_path):
    """The real process: exit code 1 and one line (not Click's exit 2 and usage box)."""
    r = _cli("forecast", "x.h5", "--members", "abc", "-o", "y.h5", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr == (
        "error: --members: 'abc' is not a whole number (see radarcast forecast --help)\n")
    assert list(tmp_path.iterdir()) == []
    h = _cli("forecast", "--help", cwd=tmp_path)  # help stays help
    assert h.returncode == 0 and "--members" in h.stdout and h.stderr == ""
