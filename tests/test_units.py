"""Pixel ↔ dBZ ↔ mm/h conversions: round trips and hand-computed HKO / FMI numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from radarcast.data.units import PRESETS, Units, get_preset
from radarcast.errors import RadarcastError

HKO = Units()
pixels = st.floats(min_value=0.0, max_value=255.0, allow_nan=False)
rates = st.floats(min_value=1e-3, max_value=500.0, allow_nan=False)
presets = st.sampled_from(sorted(PRESETS))


@given(p=pixels, name=presets)
def test_pixel_dbz_round_trip(p, name):
    u = get_preset(name)
    assert u.dbz_to_pixel(u.pixel_to_dbz(p)) == pytest.approx(p, abs=1e-9)


@given(p=pixels, name=presets)
def test_pixel_rain_round_trip(p, name):
    u = get_preset(name)
    assert u.rain_to_pixel(u.pixel_to_rain(p)) == pytest.approx(p, abs=1e-6)


@given(r=rates, name=presets)
def test_rain_pixel_round_trip(r, name):
    u = get_preset(name)
    assert u.pixel_to_rain(u.rain_to_pixel(r)) == pytest.approx(r, rel=1e-9)


@given(p=pixels, unit=st.sampled_from(["pixel", "dbz", "mmh"]))
def test_convert_and_to_pixel_are_inverse(p, unit):
    assert HKO.to_pixel(HKO.convert(p, unit), unit) == pytest.approx(p, abs=1e-6)


def test_hko_scale_end_points():
    assert HKO.pixel_to_dbz(0) == pytest.approx(-10.0)
    assert HKO.pixel_to_dbz(255) == pytest.approx(60.0)


def test_hko_half_mm_per_hour_by_hand():
    dbz = 10 * math.log10(58.53 * 0.5**1.56)  # Z = a R^b
    assert HKO.rain_to_dbz(0.5) == pytest.approx(dbz)
    assert HKO.rain_to_pixel(0.5) == pytest.approx((dbz + 10) * 255 / 70)


def test_fmi_levels_rescaled_onto_hko():
    lut = get_preset("fmi").rescale_lut(HKO)
    # DN 84 → 0.5·84 − 32 = 10 dBZ → HKO pixel (10 + 10)·255/70 = 72.86
    assert lut[84] == 73
    assert lut[0] == 0  # −32 dBZ lies below HKO's −10: clipped
    assert lut.dtype == np.uint8


def test_zero_rain_is_minus_infinite_dbz():
    assert np.isneginf(HKO.rain_to_dbz(0.0))


def test_unknown_preset_lists_choices():
    with pytest.raises(RadarcastError, match="hko"):
        get_preset("nope")


def test_half_given_zr_is_refused():
    with pytest.raises(RadarcastError):
        Units(zr_a=200.0, zr_b=None)


def test_attrs_round_trip():
    u = get_preset("mch")
    back = Units.from_attrs(u.attrs())
    assert (back.dbz_gain, back.dbz_offset, back.zr_a, back.zr_b) == (
        u.dbz_gain,
        u.dbz_offset,
        u.zr_a,
        u.zr_b,
    )
