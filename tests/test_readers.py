"""Readers: real FMI and MeteoSwiss files, a generated CIKM file, NumPy stacks, bad input."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require_shared
from PIL import Image

from radarcast.data.readers import (
    READERS,
    ReadOptions,
    compile_time_pattern,
    get_reader,
    read_cikm,
    read_image,
    read_images,
    read_numpy,
    read_pysteps,
    resolve_inputs,
)
from radarcast.errors import RadarcastError

FMI_PATTERN = "%Y%m%d%H%M_fmi"
MCH_PATTERN = "AQC%y%j%H%M?_"


def test_fmi_pgm_gz_real_files():
    folder = require_shared("radar", "fmi", "pgm", "20160928")
    paths = sorted(folder.glob("*.pgm.gz"))[:3]
    items = list(read_images(paths, ReadOptions(time_pattern=FMI_PATTERN)))
    assert items[0].frame.shape == (1226, 760) and items[0].frame.dtype == np.uint8
    assert [b.time - a.time for a, b in zip(items, items[1:], strict=False)] == [300, 300]
    assert (items[0].frame == 255).any()  # FMI's nodata value is present


def test_meteoswiss_gif_is_read_as_palette_index():
    folder = require_shared("radar", "mch", "20150515")
    path = sorted(folder.glob("*.gif"))[0]
    frame = read_image(path)
    assert frame.shape == (640, 710)
    with Image.open(path) as im:
        assert im.mode == "P"
        np.testing.assert_array_equal(frame, np.asarray(im))
    assert frame.max() == 255  # missing


def test_meteoswiss_index_matches_pysteps_rain():
    pytest.importorskip("pysteps")
    import pysteps.io

    from radarcast.data.units import get_preset

    folder = require_shared("radar", "mch", "20150515")
    path = sorted(folder.glob("*.gif"))[10]
    depth, _, _ = pysteps.io.get_method("mch_gif", "importer")(str(path), "AQC", "mm", 5.0)
    rain = np.asarray(depth) * 12.0  # mm per 5 min -> mm/h
    dn = read_image(path)
    ours = get_preset("mch").pixel_to_rain(dn)
    wet = (dn > 1) & (dn < 255)
    np.testing.assert_allclose(ours[wet], np.asarray(rain)[wet], rtol=1e-4)


def test_meteoswiss_time_pattern_with_day_of_year():
    parse = compile_time_pattern(MCH_PATTERN)
    assert parse("AQC151351545F_00005.801.gif") == 1431704700  # 2015-05-15T15:45Z


def test_time_pattern_mismatch_names_file(tmp_path):
    p = tmp_path / "radar_1.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(p)
    with pytest.raises(RadarcastError, match="radar_1.png"):
        list(read_images([p], ReadOptions(time_pattern="%Y%m%d%H%M")))


def _cikm_line(rng, sample="train_1", label="3.5"):
    values = rng.integers(0, 200, (15, 4, 101, 101))
    return values, f"{sample},{label}," + " ".join(map(str, values.ravel())) + "\n"


def test_cikm_generated_file(tmp_path):
    rng = np.random.default_rng(0)
    (v1, l1), (v2, l2) = _cikm_line(rng), _cikm_line(rng, "train_2")
    path = tmp_path / "cikm.txt"
    path.write_text(l1 + l2)
    items = list(read_cikm([path], ReadOptions(cikm_level=2)))
    assert len(items) == 30
    np.testing.assert_array_equal(items[0].frame, v1[0, 2])
    np.testing.assert_array_equal(items[29].frame, v2[14, 2])
    assert [i for i, it in enumerate(items) if it.new_segment] == [0, 15]


def test_cikm_correlation_filter(tmp_path):
    rng = np.random.default_rng(1)
    values, line = _cikm_line(rng)
    still = values.copy()
    still[:] = values[0]  # first and last frames identical: correlation 1
    still_line = "s,0," + " ".join(map(str, still.ravel())) + "\n"
    path = tmp_path / "cikm.txt"
    path.write_text(line + still_line)
    items = list(read_cikm([path], ReadOptions(max_start_end_corr=0.9)))
    assert len(items) == 15


def test_cikm_wrong_length_names_line(tmp_path):
    path = tmp_path / "cikm.txt"
    path.write_text("a,1," + " ".join(["1"] * 100) + "\n")
    with pytest.raises(RadarcastError, match="line 1.*100 values"):
        list(read_cikm([path], ReadOptions()))


def test_npy_three_and_four_dimensional(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (2, 3, 8, 9), dtype=np.uint8)
    np.save(tmp_path / "four.npy", a)
    np.save(tmp_path / "three.npy", a[0])
    items = list(read_numpy([tmp_path / "four.npy", tmp_path / "three.npy"], ReadOptions()))
    assert len(items) == 9
    assert [it.new_segment for it in items] == [True, False, False] * 3
    np.testing.assert_array_equal(items[4].frame, a[1, 1])


def test_npz_float_with_nan_is_masked(tmp_path):
    a = np.full((2, 4, 4), 7.0)
    a[1, 0, 0] = np.nan
    np.savez(tmp_path / "s.npz", seq=a)
    items = list(read_numpy([tmp_path / "s.npz"], ReadOptions()))
    assert items[0].mask is None
    assert not items[1].mask[0, 0] and items[1].mask.sum() == 15


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.full((2, 4, 4), 0.5), "float values"),
        (np.full((2, 4, 4), 300, np.int32), "outside the 0–255"),
        (np.zeros((4, 4), np.uint8), "expected \\(T, H, W\\)"),
    ],
)
def test_bad_npy_is_refused(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(RadarcastError, match=message):
        list(read_numpy([tmp_path / "bad.npy"], ReadOptions()))


def test_rgb_image_is_refused(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "c.png")
    with pytest.raises(RadarcastError, match="c.png.*colour"):
        read_image(tmp_path / "c.png")


def test_sixteen_bit_beyond_255_is_refused(tmp_path):
    Image.fromarray(np.full((4, 4), 1000, np.uint16)).save(tmp_path / "d.png")
    with pytest.raises(RadarcastError, match="d.png.*outside"):
        read_image(tmp_path / "d.png")


def test_truncated_image_is_refused(tmp_path):
    Image.fromarray(np.arange(4096, dtype=np.uint16).reshape(64, 64).astype(np.uint8)).save(
        tmp_path / "t.png"
    )
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(RadarcastError, match="t.png"):
        read_image(tmp_path / "t.png")


def test_truncated_gzip_is_refused(tmp_path):
    data = gzip.compress(b"P5\n4 4\n255\n" + bytes(16))
    (tmp_path / "x.pgm.gz").write_bytes(data[:-10])
    with pytest.raises(RadarcastError, match="x.pgm.gz"):
        read_image(tmp_path / "x.pgm.gz")


def test_truncated_pgm_is_refused(tmp_path):
    (tmp_path / "t.pgm").write_bytes(b"P5\n4 4\n255\n" + bytes(10))
    with pytest.raises(RadarcastError, match="t.pgm"):
        read_image(tmp_path / "t.pgm")


@pytest.mark.parametrize("header", [b"P5\n7 3\n255\n", b"P5 # c\n# a comment\n7\n3 200\n"])
def test_direct_pgm_parser_keeps_stored_values(tmp_path, header):
    # values come back as stored (radar DNs), also under a maxval below 255, which Pillow
    # would stretch to 0..255
    grid = np.random.default_rng(0).integers(0, 201, (3, 7), dtype=np.uint8)
    (tmp_path / "g.pgm.gz").write_bytes(gzip.compress(header + grid.tobytes()))
    np.testing.assert_array_equal(read_image(tmp_path / "g.pgm.gz"), grid)


def test_no_inputs_matched(tmp_path):
    with pytest.raises(RadarcastError, match="no files match"):
        resolve_inputs([str(tmp_path / "*.png")])


def test_folder_lists_only_input_files(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "notes.json").write_text("{}")
    assert resolve_inputs([str(tmp_path)], (".png",)) == [tmp_path / "a.png"]


def test_pysteps_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pysteps", None)
    monkeypatch.setitem(sys.modules, "pysteps.io", None)
    with pytest.raises(RadarcastError, match=r"pip install 'radarcast\[pysteps\]'"):
        list(read_pysteps([Path("x.pgm.gz")], ReadOptions(pysteps_importer="fmi_pgm")))


def test_pysteps_mch_matches_direct_reading():
    pytest.importorskip("pysteps")
    from radarcast.data.units import get_preset

    folder = require_shared("radar", "mch", "20150515")
    path = sorted(folder.glob("*.gif"))[10]
    opts = ReadOptions(pysteps_importer="mch_gif", target=get_preset("mch"))
    item = next(read_pysteps([path], opts))
    dn = read_image(path)
    wet = (dn > 1) & (dn < 255)
    assert np.abs(item.frame[wet].astype(int) - dn[wet]).max() <= 1
    np.testing.assert_array_equal(item.mask, dn != 255)


def test_unknown_format_lists_choices():
    with pytest.raises(RadarcastError, match="images.*npy.*cikm.*pysteps"):
        get_reader("jpeg")


def test_every_reader_is_a_format_choice():
    for name in READERS:
        kind, _ = get_reader(f"{name}:fmi_pgm" if name == "pysteps" else name)
        assert kind == name


def test_pysteps_values_converted_to_target_pixels():
    from radarcast.data.readers import pysteps_to_pixels
    from radarcast.data.units import Units

    hko = Units()
    depth = np.array([[0.0, 1.0], [np.nan, 0.25]])  # mm in 15 minutes → 0, 4, NaN, 1 mm/h
    pixels, valid = pysteps_to_pixels(depth, {"unit": "mm", "accutime": 15}, hko, "x")
    expected = np.clip(np.rint(hko.rain_to_pixel(np.array([4.0, 1.0]))), 0, 255)
    assert pixels[0, 1] == expected[0] and pixels[1, 1] == expected[1]
    assert pixels[0, 0] == 0 and pixels[1, 0] == 0
    assert valid.tolist() == [[True, True], [False, True]]
    dbz, _ = pysteps_to_pixels(np.array([[20.0]]), {"unit": "dBZ", "transform": "dB"}, hko, "x")
    assert dbz[0, 0] == round((20 + 10) * 255 / 70)


def test_every_pysteps_importer_has_its_products_suffixes():
    # pysteps formats had no suffixes: a folder gave every file, checksums and READMEs too
    pytest.importorskip("pysteps")
    import pysteps

    from radarcast.data.raw import PYSTEPS_SUFFIXES

    assert set(PYSTEPS_SUFFIXES) == set(pysteps.io.interface._importer_methods)
    for name, source in pysteps.rcparams.data_sources.items():
        suffixes = PYSTEPS_SUFFIXES.get(source["importer"], ())  # also NWP importers
        if source["importer"] in PYSTEPS_SUFFIXES and suffixes is not None:
            assert "." + source["fn_ext"] in suffixes, (name, source["fn_ext"])


@pytest.mark.parametrize(
    ("importer", "product"),
    [("mch_gif", "AQC151351630F_00005.801.gif"), ("fmi_pgm", "201609281600_fmi.pgm.gz"),
     ("opera_hdf5", "T_PAAH21_C_EUOC_20180824180000.hdf"), ("knmi_hdf5", "RAD_NL25.H5")],
)  # fmt: skip
def test_a_pysteps_folder_gives_only_its_products(tmp_path, importer, product):
    from radarcast.data.readers import input_suffixes

    for name in (product, product + ".md5", "README.txt", "index.json"):
        (tmp_path / name).write_bytes(b"")
    found = resolve_inputs([str(tmp_path)], input_suffixes("pysteps", importer))
    assert found == [tmp_path / product]
