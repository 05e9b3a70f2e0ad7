"""Every method scored on the same pixels (`evaluate(..., pixels="common")`, the default):
pysteps' extrapolation leaves unknown what flows in from outside the grid, and persistence
is then not scored there either; with pixels="own" each keeps its own."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pysteps")
pytest.importorskip("cv2")


def scored_pixels(scores, name: str) -> np.ndarray:
    """(L,) pixels scored per lead: the contingency cells of the first threshold summed."""
    counts = np.asarray(scores.method(name).result()["counts"])  # (L, K, 4)
    return counts[:, 0].sum(axis=-1)


def test_common_pixels_are_the_same_for_every_method(tiny_dataset):
    from radarcast.evaluation import evaluate

    kw = dict(split="all", limit=3, preset="hko7")
    methods = ["persistence", "pysteps:extrapolation"]
    own = evaluate(tiny_dataset, methods, pixels="own", **kw)
    common = evaluate(tiny_dataset, methods, **kw)
    p_own, e_own = scored_pixels(own, "persistence"), scored_pixels(own, "pysteps:extrapolation")
    assert (e_own < p_own).any()  # the case: pysteps forecasts fewer pixels
    np.testing.assert_array_equal(scored_pixels(common, "persistence"), e_own)
    np.testing.assert_array_equal(scored_pixels(common, "pysteps:extrapolation"), e_own)
    # pysteps' own scores do not change: its pixels were the common ones already
    theirs = "pysteps:extrapolation"
    np.testing.assert_array_equal(common.method(theirs).result()["counts"],
                                  own.method(theirs).result()["counts"])  # fmt: skip


def test_an_unknown_pixel_rule_is_refused(tiny_dataset):
    from radarcast.errors import RadarcastError
    from radarcast.evaluation import evaluate

    with pytest.raises(RadarcastError, match="--pixels 'mine': choose one of common, own"):
        evaluate(tiny_dataset, ["persistence"], split="all", limit=1, pixels="mine")


@pytest.mark.parametrize("rule", ["common", "own"])
def test_the_cli_states_the_pixel_rule_next_to_the_numbers(tiny_dataset, tmp_path, rule):
    import json

    from tests.conftest import run_cli

    out = tmp_path / rule
    r = run_cli("evaluate", tiny_dataset, "-m", "persistence", "-m", "pysteps:extrapolation",
                "--split", "all", "--limit", "2", "--pixels", rule, "--out", out)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads((out / "scores.json").read_text())
    assert doc["conventions"]["pixels"].startswith(
        "every method is scored on the same pixels" if rule == "common" else "each method")
    ours, theirs = (m["per_lead"]["n_valid_pixels"] for m in doc["methods"])
    assert (ours == theirs) == (rule == "common")
