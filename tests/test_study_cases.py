"""Which test window a study case draws ('growth', 'wettest', a number): the same choice as
looking at every frame, from only the frames the choice needs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from radarcast.data.dataset import RadarDataset
from radarcast.data.store import DatasetWriter, open_dataset
from radarcast.data.units import Units
from radarcast.errors import RadarcastError
from radarcast.study.report import pick_window

AREAS = [3, 9, 1, 4, 30, 2, 2, 40, 5, 6, 1, 12, 20, 0, 7, 8, 3, 25, 1, 2]  # wet pixels a frame


@pytest.fixture
def wet_series(tmp_path):
    path = tmp_path / "wet.h5"
    with DatasetWriter(path, units=Units(), timestep_s=300, n_in=2, n_out=3,
                       command="test") as w:
        for i, a in enumerate(AREAS):
            frame = np.zeros((8, 8), np.uint8)
            frame.reshape(-1)[:a] = 200
            w.append(frame, 1_600_000_000 + 300 * i)
        w.finish((0.0, 0.0, 1.0))
    return path


def _brute(path, s, kind):
    with open_dataset(path) as ds:
        starts = ds.windows(s.n_in, s.n_out, "test")
        wet = np.array([(ds.frames(t)[0] >= 100).sum() for t in range(ds.n_frames)], float)
    t0 = wet[starts + s.n_in - 1]
    gain = wet[starts + s.n_in + s.n_out - 1] - t0
    return int(np.argmax(gain if kind == "growth" else t0))


@pytest.mark.parametrize("kind", ["growth", "wettest"])
def test_picks_as_every_frame_would_reading_only_what_it_needs(wet_series, monkeypatch, kind):
    s = SimpleNamespace(n_in=2, n_out=3)
    expected = _brute(wet_series, s, kind)
    read = []
    frames = RadarDataset.frames

    def counting(self, start, stop=None):
        read.append((start, stop))
        return frames(self, start, stop)

    monkeypatch.setattr(RadarDataset, "frames", counting)
    assert pick_window(wet_series, s, kind, 100.0) == expected
    n_windows = len(AREAS) - 4
    wanted = {i + 1 for i in range(n_windows)}  # t0 of each window
    if kind == "growth":
        wanted |= {i + 4 for i in range(n_windows)}
    assert sorted(r[0] for r in read) == sorted(wanted)
    # wettest: t0 = frame 7 (40 pixels); growth: frame 1 (9) → frame 4 (30), +21
    assert expected == (6 if kind == "wettest" else 0)


def test_a_window_number_is_checked(wet_series):
    s = SimpleNamespace(n_in=2, n_out=3)
    assert pick_window(wet_series, s, 2, 100.0) == 2
    with pytest.raises(RadarcastError, match="out of range"):
        pick_window(wet_series, s, 99, 100.0)
