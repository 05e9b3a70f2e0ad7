"""Event thresholds beyond the dataset's scale are refused by name, with the scale's range.

`animate --overlay 1e308` in dBZ or mm/h, a negative rain rate, and evaluate's
--thresholds above the top pixel's value used to exit 0 (an overlay that draws nothing,
an event that can never happen). One check, Units.check_reachable, serves all of them.
"""

import pytest

from radarcast.data.units import Units
from radarcast.errors import RadarcastError
from radarcast.evaluation.thresholds import resolve_thresholds
from tests.conftest import run_cli

HKO = Units()  # the tiny dataset's scale


@pytest.mark.parametrize("unit,value", [("dbz", 1e308), ("dbz", 1e3), ("mmh", 1e308),
                                        ("mmh", -1.0), ("pixel", 256.0), ("dbz", float("nan"))])
def test_check_reachable_refuses_by_name_with_range(unit, value):
    with pytest.raises(RadarcastError, match=r"--overlay .* beyond x\.h5.s scale: its pixels"):
        HKO.check_reachable(value, unit, "--overlay", "x.h5")


@pytest.mark.parametrize("unit", ["pixel", "dbz", "mmh"])
def test_check_reachable_accepts_the_scale_top(unit):
    HKO.check_reachable(HKO.pixel_lut(unit)[-1], unit, "--overlay")
    HKO.check_reachable(HKO.pixel_lut(unit)[128], unit, "--overlay")


def test_evaluate_thresholds_beyond_scale_refused():
    with pytest.raises(RadarcastError, match="threshold 1e\\+308 dBZ is beyond"):
        resolve_thresholds(HKO, values=[20.0, 1e308], unit="dbz")
    assert resolve_thresholds(HKO, preset="hko7").values  # the presets stay valid


@pytest.mark.parametrize("units,overlay", [("dbz", "1e308"), ("mmh", "1e308"), ("mmh", "-1")])
def test_animate_refuses_impossible_overlay(tiny_dataset, tmp_path, units, overlay):
    out = tmp_path / "a.gif"
    r = run_cli("animate", tiny_dataset, "-o", out, "--units", units, f"--overlay={overlay}")
    assert r.returncode == 1, r.stdout + r.stderr
    text = r.stdout + r.stderr
    assert "--overlay" in text and "its pixels cover" in text and "Traceback" not in text
    assert not out.exists()
