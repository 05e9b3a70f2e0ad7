"""Scoring ensemble files whatever their member count: more members than leads, fewer leads
scored than stored, and a file too large to hold one window of is refused before reading."""

from __future__ import annotations

import numpy as np
import pytest

from radarcast.errors import RadarcastError
from tests.conftest import run_cli


@pytest.fixture
def ensemble_file(tiny_dataset, tmp_path):
    """6 members, the tiny dataset's 4 leads, 3 windows: more members than leads."""
    out = tmp_path / "ens6.h5"
    r = run_cli("forecast", tiny_dataset, "--method", "rover", "--members", "6", "--limit", "3",
                "--split", "all", "--device", "cpu", "-o", out)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def _scores(tiny_dataset, forecast, **kw):
    from radarcast.evaluation import evaluate

    return evaluate(tiny_dataset, [], [forecast], split="all", preset="hko7", **kw)


def test_more_members_than_leads_are_scored_on_every_lead(tiny_dataset, ensemble_file):
    from radarcast.data.forecast_file import open_forecast

    scores = _scores(tiny_dataset, ensemble_file)
    result, prob = scores.methods[-1].result(), scores.methods[-1].prob.doc()
    assert prob["members"] == 6
    assert len(prob["per_lead"]["crps"]) == 4  # leads, not members
    with open_forecast(ensemble_file) as f:  # the ensemble mean's categorical scores
        assert f.shape[:3] == (3, 6, 4)
    assert np.asarray(result["csi"]).shape[0] == 4


def test_fewer_leads_than_stored(tiny_dataset, ensemble_file):
    scores = _scores(tiny_dataset, ensemble_file, n_out=3)
    prob = scores.methods[-1].prob.doc()
    assert len(prob["per_lead"]["crps"]) == 3 and prob["members"] == 6


def test_a_file_whose_window_cannot_be_held_is_refused_before_reading(
    tiny_dataset, ensemble_file, monkeypatch
):
    import radarcast.baselines.ensemble_forecaster as ef

    monkeypatch.setattr(ef, "available_bytes", lambda: 1000)
    with pytest.raises(RadarcastError, match=r"its 6 members, 4 leads on the 64x64 grid needs"):
        _scores(tiny_dataset, ensemble_file)


def test_centre_alone_makes_the_default_ensemble_around_a_checkpoint(smoke, tmp_path):
    """`--centre RUN/best.pt` without `--members`: the default 20 members (it read
    'ensemble.members: expected int, got None')."""
    from radarcast.data.forecast_file import open_forecast

    out = tmp_path / "centred.h5"
    r = run_cli("forecast", smoke / "data" / "day4__test.h5", "--method", "rover", "--centre",
                smoke / "runs" / "main" / "convlstm-tiny" / "best.pt", "--limit", "1",
                "--device", "cpu", "-o", out)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    with open_forecast(out) as f:
        assert f.members == 20 and f.config["ensemble"]["members"] == 20
        assert "centre" in str(f.config)
