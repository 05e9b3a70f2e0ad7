"""Dataset content fingerprints (issue 21, item 1).

Before them a forecast file recorded only a hash of its dataset's frame shape and time axis:
``evaluate B.h5 -f forecast_of_A.h5`` scored A's forecast against B's truth whenever the two
shared a grid and a time axis (a re-preprocessed dataset, another product, a --crop).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from radarcast.errors import RadarcastError


def _dataset(path, value_shift=0, units=None):
    from radarcast.data.store import DatasetWriter
    from radarcast.data.units import Units

    with DatasetWriter(path, units=units or Units(), timestep_s=300, n_in=3, n_out=4,
                       command="test") as w:
        for i in range(12):
            w.append(np.full((16, 16), (i * 7 + value_shift) % 256, np.uint8),
                     1_600_000_000 + 300 * i)
        w.finish()
    return path


def _forecast(ds, path):
    from radarcast.data.forecast_writer import ForecastWriter

    with ForecastWriter(path, ds, [0, 1], method="m", config={}, n_in=3, n_out=4,
                        split=None) as w:
        w.write(np.zeros((2, 4, 16, 16), np.uint8))
        w.finish()
    return path


def test_forecast_of_another_dataset_with_the_same_grid_and_times_is_refused(tmp_path):
    from radarcast.data.forecast_file import open_forecast
    from radarcast.data.store import open_dataset

    a, b = open_dataset(_dataset(tmp_path / "a.h5")), open_dataset(_dataset(tmp_path / "b.h5", 1))
    assert a.identity()["content_hash"] == b.identity()["content_hash"]  # the old check
    fc = open_forecast(_forecast(a, tmp_path / "fc.h5"))
    fc.check_matches(a, 3, 4)
    with pytest.raises(RadarcastError) as e:
        fc.check_matches(b, 3, 4)
    fa, fb = a.fingerprint(), b.fingerprint()
    assert str(e.value) == (f"{fc.path} was made from another dataset (fingerprint {fa[:8]}... "
                            f"of a.h5), not from b.h5 (fingerprint {fb[:8]}...)")


def test_units_change_the_fingerprint_and_equal_content_gives_equal_prints(tmp_path):
    from radarcast.data.store import open_dataset
    from radarcast.data.units import Units

    one = open_dataset(_dataset(tmp_path / "1.h5")).fingerprint()
    assert open_dataset(_dataset(tmp_path / "2.h5")).fingerprint() == one  # created_at differs
    other = Units(dbz_gain=0.4, dbz_offset=-30.0)
    assert open_dataset(_dataset(tmp_path / "3.h5", units=other)).fingerprint() != one


def test_old_datasets_are_fingerprinted_on_demand_and_old_forecasts_still_check(tmp_path):
    from radarcast.data.forecast_file import open_forecast
    from radarcast.data.store import open_dataset

    path = _dataset(tmp_path / "a.h5")
    with open_dataset(path) as d:
        stored = d.fingerprint()
    with h5py.File(path, "a") as f:
        del f.attrs["content_fingerprint"]  # a dataset written before fingerprints
    ds = open_dataset(path)
    assert ds.fingerprint() == stored
    fc_path = _forecast(ds, tmp_path / "fc.h5")
    with h5py.File(path) as f:
        assert "content_fingerprint" not in f.attrs  # nothing written back
    with h5py.File(fc_path, "a") as f:
        del f.attrs["dataset_fingerprint"]  # a forecast written before fingerprints
    with open_forecast(fc_path) as fc:
        assert fc.dataset_fingerprint is None
        fc.check_matches(ds, 3, 4)  # the shape-and-time check still applies
        b = open_dataset(_dataset(tmp_path / "b.h5", 1))
        fc.check_matches(b, 3, 4)  # ... and cannot tell these two apart (why prints exist)


@pytest.mark.parametrize("command", ["evaluate", "animate", "export"])
def test_cli_readers_refuse_a_forecast_of_another_dataset_in_one_line(tmp_path, command):
    from conftest import run_cli

    from radarcast.data.store import open_dataset

    with open_dataset(_dataset(tmp_path / "a.h5")) as a:
        fc = _forecast(a, tmp_path / "fc.h5")
    b = _dataset(tmp_path / "b.h5", 1)
    args = {
        "evaluate": ["evaluate", b, "-f", fc, "--out", tmp_path / "scores", "--split", "all",
                     "--fss-scales", "1"],
        "animate": ["animate", b, "-f", fc, "-o", tmp_path / "a.gif"],
        "export": ["export", fc, "--dataset", b, "-o", tmp_path / "x.nc"],
    }[command]
    r = run_cli(*[str(x) for x in args], cwd=tmp_path)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 1, out
    assert len(out.splitlines()) == 1 and "Traceback" not in out, out
    assert "fc.h5 was made from another dataset (fingerprint" in out and "not from b.h5" in out
    assert not [p for p in tmp_path.iterdir() if p.name not in ("a.h5", "b.h5", "fc.h5")]
