"""Config machinery: defaults < TOML < flags, unknown keys refused, TOML round trip."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from radarcast.config import dumps_toml, from_dict, load_toml, resolve, to_dict, write_toml
from radarcast.errors import RadarcastError


@dataclass(frozen=True)
class Inner:
    depth: int = 2


@dataclass(frozen=True)
class Example:
    lr: float = 1e-3
    steps: int = 100
    name: str = "run"
    hidden: tuple[int, ...] = (64, 64)
    crop: int | None = None
    flag: bool = False
    inner: Inner = Inner()


def test_layers_override_in_order():
    cfg = resolve(Example, {"lr": 0.01, "steps": 5}, {"steps": 7, "name": None})
    assert (cfg.lr, cfg.steps, cfg.name) == (0.01, 7, "run")


def test_unknown_key_is_named():
    with pytest.raises(RadarcastError, match="'lrate'"):
        from_dict(Example, {"lrate": 1.0}, "train")


def test_wrong_type_is_refused():
    with pytest.raises(RadarcastError, match="steps"):
        from_dict(Example, {"steps": "many"})


def test_ints_become_floats_and_lists_tuples():
    cfg = from_dict(Example, {"lr": 1, "hidden": [8, 16], "inner": {"depth": 3}})
    assert isinstance(cfg.lr, float)
    assert cfg.hidden == (8, 16)
    assert cfg.inner == Inner(3)


def test_toml_round_trip(tmp_path):
    cfg = Example(lr=0.5, hidden=(1, 2, 3), name='a "quoted" name', flag=True, inner=Inner(4))
    path = write_toml({"train": to_dict(cfg)}, tmp_path / "c.toml")
    back = from_dict(Example, load_toml(path)["train"], "train")
    assert back == cfg


def test_none_values_are_left_out_of_toml():
    assert "crop" not in dumps_toml(to_dict(Example()))


def test_bad_toml_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("lr = = 3\n")
    with pytest.raises(RadarcastError, match="bad.toml"):
        load_toml(path)
