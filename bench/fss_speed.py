"""FSS scoring speed: radarcast's FSSAccumulator against pysteps' fss, same fields, one run.

The fields are real: for each event of ``--sources`` (MeteoSwiss, FMI in ../shared/data), a
window in the middle of the event, its 12 observed frames as the truth and, as the forecast,
the frame before them held for 12 leads (persistence), in mm/h on radarcast's scale of the
product. Both implementations score every lead at thresholds 0.5/2/5/10 mm/h and scales
1/2/4/8/16/32 px (``bench/ensemble_speed.py``'s ``fss_speed``, which also reports the largest
difference between the two FSS values). The issue-18 goal: ≥ 10× pysteps' speed.

    python bench/fss_speed.py [--sources mch,fmi] [--repeats 3] [--out bench/results/fss_speed.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ensemble_speed as es  # noqa: E402
import rover_skill_speed as rss  # noqa: E402
from _common import write_json  # noqa: E402

from radarcast.data.units import PRESETS  # noqa: E402


def fields(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(12, H, W) persistence forecast and truth of the middle window of the first event."""
    _, pattern, _ = rss.SOURCES[name]
    files = next(iter(rss.events(pattern).values()))
    frames = np.stack([rss.read_dn(f) for f in files])
    s = (len(frames) - es.N_IN - es.N_OUT) // 2
    rain = PRESETS[name].pixel_to_rain(frames[s + es.N_IN - 1 : s + es.N_IN + es.N_OUT])
    truth = rain[1:].astype(np.float32)
    forecast = np.repeat(rain[:1], es.N_OUT, axis=0).astype(np.float32)
    return forecast, truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", default="mch,fmi")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "fss_speed.json"))
    a = ap.parse_args()
    rss.DATA = es.DATA
    out = {"thresholds_mmh": list(es.THRESHOLDS), "scales_px": list(es.DEFAULT_SCALES),
           "loadavg_before": os.getloadavg(), "results": {}}
    for name in a.sources.split(","):
        f, o = fields(name)
        runs = [es.fss_speed(f, o) for _ in range(a.repeats)]
        ours = float(np.median([r["radarcast_s"] for r in runs]))
        theirs = float(np.median([r["pysteps_s"] for r in runs]))
        out["results"][name] = {
            "grid": list(o.shape[1:]), "leads": len(o), "radarcast_s": ours, "pysteps_s": theirs,
            "speedup": theirs / ours,
            "max_abs_difference": max(r["max_abs_difference"] for r in runs), "runs": runs,
        }
        print(f"{name} {o.shape[1]}x{o.shape[2]}: radarcast {ours:.3f} s, pysteps {theirs:.3f} s, "
              f"{theirs / ours:.1f}x, largest FSS difference "
              f"{out['results'][name]['max_abs_difference']:.2e}", flush=True)
    out["loadavg_after"] = os.getloadavg()
    out["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_json(a.out, out)


if __name__ == "__main__":
    main()
