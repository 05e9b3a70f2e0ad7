"""The radarcast/1 file: write ↔ read, segments, splits, windows, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest

from radarcast.data import codec
from radarcast.data.store import DatasetWriter, chunk_shape, open_dataset
from radarcast.data.units import Units
from radarcast.errors import RadarcastError

T0 = 1_700_000_000


def _write(path, frames, times, masks=None, starts=None, fractions=(0.6, 0.2, 0.2)):
    with DatasetWriter(path, units=Units(), timestep_s=300, n_in=2, n_out=3, command="t") as w:
        for i, (f, t) in enumerate(zip(frames, times, strict=True)):
            m = None if masks is None else masks[i]
            w.append(f, t, m, new_segment=bool(starts is not None and starts[i]), name=f"f{i}")
        return w.finish(fractions)


def _random(n, h=20, w=24, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w), dtype=np.uint8)


def test_round_trip_pixels_times_masks(tmp_path):
    frames = _random(12)
    times = T0 + 300 * np.arange(12)
    masks = np.ones_like(frames, dtype=bool)
    masks[4, 3:7, 5:9] = False
    masks[9, 0] = False
    ds = open_dataset(_write(tmp_path / "d.h5", frames, times, masks))
    np.testing.assert_array_equal(ds.frames(0, 12), frames)
    np.testing.assert_array_equal(ds.times, times)
    np.testing.assert_array_equal(ds.masks(0, 12), masks)


def test_mask_that_starts_late_reads_valid_before(tmp_path):
    frames = _random(5)
    masks = [None, None, None, np.zeros((20, 24), bool), None]
    ds = open_dataset(_write(tmp_path / "d.h5", frames, T0 + 300 * np.arange(5), masks))
    valid = ds.masks(0, 5)
    assert valid[:3].all() and not valid[3].any() and valid[4].all()


@pytest.mark.parametrize("backend", ["isal", "zlib"])
def test_large_grid_tiles_with_partial_edges(tmp_path, monkeypatch, backend):
    if backend == "zlib":  # the fallback where ISA-L has no wheel
        monkeypatch.setattr(codec, "_isal_zlib", None)
    elif codec.backend() != "isal":
        pytest.skip("isal is not installed")
    frames = _random(2, h=1100, w=530)
    masks = np.random.default_rng(1).random(frames.shape) > 0.1
    ds = open_dataset(
        _write(tmp_path / "d.h5", frames, T0 + 300 * np.arange(2), masks, fractions=(1, 0, 0))
    )
    np.testing.assert_array_equal(ds.frames(0, 2), frames)
    np.testing.assert_array_equal(ds.masks(0, 2), masks)
    # even tiles: 1100 rows → 3 × 367 (one padded row), 530 columns → 2 × 265
    assert ds.file["frames"].chunks == (1, 367, 265)


def test_chunks_split_large_grids_evenly():
    assert chunk_shape(100, 100) == (1, 100, 100)
    assert chunk_shape(512, 513) == (1, 512, 257)
    assert chunk_shape(1226, 760) == (1, 409, 380)  # FMI's grid: 512-row tiles would pad 310


def test_gap_and_flag_start_segments_and_no_window_crosses(tmp_path):
    times = T0 + 300 * np.arange(40)
    times[15:] += 3600  # a time gap before frame 15
    starts = np.zeros(40, bool)
    starts[27] = True  # an independent sequence at 27
    ds = open_dataset(_write(tmp_path / "d.h5", _random(40), times, starts=starts))
    borders = set(np.flatnonzero(np.diff(ds.segments)) + 1)
    assert {15, 27} <= borders
    for s in ds.windows(2, 3):
        assert ds.segments[s] == ds.segments[s + 4]
        assert not any(s < b <= s + 4 for b in borders)


def test_no_frame_in_two_splits_and_split_borders_are_segment_borders(tmp_path):
    ds = open_dataset(_write(tmp_path / "d.h5", _random(50), T0 + 300 * np.arange(50)))
    used = {}
    for split in ("train", "val", "test"):
        for s in ds.windows(2, 3, split):
            for i in range(s, s + 5):
                assert used.setdefault(i, split) == split
    assert len(set(used.values())) == 3
    split_borders = np.flatnonzero(np.diff(ds.splits)) + 1
    segment_borders = np.flatnonzero(np.diff(ds.segments)) + 1
    assert set(split_borders) <= set(segment_borders)


def test_exception_inside_writer_leaves_no_file(tmp_path):
    out = tmp_path / "d.h5"
    with pytest.raises(RuntimeError):
        with DatasetWriter(out, units=Units(), timestep_s=300) as w:
            w.append(_random(1)[0], T0)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_bad_frame_inside_writer_leaves_no_file(tmp_path):
    out = tmp_path / "d.h5"
    with pytest.raises(RadarcastError, match="second"):
        with DatasetWriter(out, units=Units(), timestep_s=300) as w:
            w.append(_random(1)[0], T0)
            w.append(_random(1, h=10)[0], T0 + 300, name="second")
    assert list(tmp_path.iterdir()) == []


def test_decreasing_time_is_refused(tmp_path):
    with DatasetWriter(tmp_path / "d.h5", units=Units(), timestep_s=300) as w:
        w.append(_random(1)[0], T0)
        with pytest.raises(RadarcastError, match="does not come after"):
            w.append(_random(1)[0], T0, name="dup")


def test_existing_output_is_refused(tmp_path):
    out = tmp_path / "d.h5"
    out.write_bytes(b"old")
    with pytest.raises(RadarcastError, match="--overwrite"):
        DatasetWriter(out, units=Units(), timestep_s=300)
    assert out.read_bytes() == b"old"


def test_overwrite_replaces(tmp_path):
    out = tmp_path / "d.h5"
    out.write_bytes(b"old")
    with DatasetWriter(out, units=Units(), timestep_s=300, overwrite=True) as w:
        w.append(_random(1)[0], T0)
        w.finish((1, 0, 0))
    assert open_dataset(out).n_frames == 1


def test_attributes_recorded(tmp_path):
    ds = open_dataset(_write(tmp_path / "d.h5", _random(10), T0 + 300 * np.arange(10)))
    assert ds.attrs["schema"] == "radarcast/1"
    assert (ds.timestep_s, ds.n_in, ds.n_out) == (300, 2, 3)
    assert ds.units.zr_a == pytest.approx(58.53)


@pytest.mark.parametrize(
    ("lengths", "window"), [((30, 30, 30), 20), ((40,) * 8, 20), ((30, 30), 7), ((1000,), 20)]
)
def test_every_split_gets_a_window_when_the_data_allows(lengths, window):
    from radarcast.data.store import assign_splits

    segment = np.concatenate([np.full(n, i) for i, n in enumerate(lengths)])
    new_segment, split = assign_splits(segment, (0.8, 0.1, 0.1), window)
    for code in range(3):
        runs = np.bincount(new_segment[split == code])
        assert runs.max() >= window, f"split {code} has no run of {window} frames"
    # whole segments stay whole where borders are near the cuts
    if lengths == (40,) * 8:
        assert list(np.flatnonzero(np.diff(split)) + 1) == [240, 280]
