"""preprocess throughput beside bare decoding of the same files, and peak memory vs frames.

    python bench/preprocess_speed.py [--png-frames 200] [--memory 1000,10000] [--zlib]

Cases: 480×480 PNGs from ``radarcast synth`` and the FMI PGM.gz composites in
../shared/data (skipped when absent). For each, in the same run and alternating: the time to
only decode every file with imageio (the goal's baseline), the time to only decode them with
radarcast's own reader (ISA-L gunzip, a direct PGM parser), and the time of ``preprocess`` on
the same files (decode, mask, rescale, compress, write). The second baseline shows how much of
the margin comes from faster decoding and how much the rest of the pipeline costs. Peak RSS
comes from fresh subprocesses preprocessing 1,000 and 10,000 64×64 PNG frames. Prints a
table; writes bench/results/preprocess_speed.json (with --zlib, which writes and gunzips
through zlib instead of ISA-L, preprocess_speed_zlib.json).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio

from radarcast.data import codec
from radarcast.data.preprocess import PreprocessConfig, preprocess
from radarcast.data.readers import read_image
from radarcast.data.synthetic import TIME_PATTERN, SynthConfig, write_synth

OUT = Path(__file__).parent / "results" / "preprocess_speed.json"
FMI = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "pysteps-data"
    / "radar"
    / "fmi"
    / "pgm"
)

RSS_CHILD = """
import resource, sys
from radarcast.data.preprocess import PreprocessConfig, preprocess
def rss_now():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
preprocess([sys.argv[1]], sys.argv[2], PreprocessConfig(time_pattern=sys.argv[3]))
print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, rss_now())
"""


def decode(path: Path):
    if path.name.endswith(".gz"):
        return iio.imread(gzip.decompress(path.read_bytes()), extension=".pgm")
    return iio.imread(path)


def compare(
    name: str, files: list[Path], config: PreprocessConfig, repeats: int, tmp: Path
) -> dict:
    """Median wall time, and CPU time of all threads, of decoding vs preprocessing."""
    dec, own, pre, dec_cpu, pre_cpu = [], [], [], [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        for f in files:
            decode(f)
        dec.append(time.perf_counter() - t)
        dec_cpu.append(time.process_time() - c)
        t = time.perf_counter()
        for f in files:
            read_image(f)
        own.append(time.perf_counter() - t)
        t, c = time.perf_counter(), time.process_time()
        preprocess(files, tmp / "bench.h5", config)
        pre.append(time.perf_counter() - t)
        pre_cpu.append(time.process_time() - c)
        (tmp / "bench.h5").unlink()
    d, o, p = statistics.median(dec), statistics.median(own), statistics.median(pre)
    dc, pc = statistics.median(dec_cpu), statistics.median(pre_cpu)
    return {
        "case": name,
        "frames": len(files),
        "decode_s": d,
        "preprocess_s": p,
        "radarcast_decode_s": o,
        "decode_fps": len(files) / d,
        "radarcast_decode_fps": len(files) / o,
        "preprocess_fps": len(files) / p,
        "ratio": p / d,
        "ratio_to_radarcast_decode": p / o,
        "decode_cpu_s": dc,
        "preprocess_cpu_s": pc,
        "cpu_ratio": pc / dc,
        "decode_all_s": dec,
        "preprocess_all_s": pre,
        "radarcast_decode_all_s": own,
    }


def peak_rss(n: int, tmp: Path) -> dict:
    cfg = SynthConfig(sequences=max(1, n // 500), frames=min(n, 500), height=64, width=64)
    folder = write_synth(tmp / f"mem{n}", cfg)
    r = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, str(folder), str(tmp / f"mem{n}.h5"), TIME_PATTERN],
        capture_output=True,
        text=True,
        check=True,
    )
    base, peak, end = (int(v) for v in r.stdout.split()[-3:])
    return {
        "frames": cfg.sequences * cfg.frames,
        "grid": "64x64",
        "rss_after_imports_mib": base / 1024,
        "peak_rss_mib": peak / 1024,
        "rss_at_end_mib": end / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--png-frames", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory", default="1000,10000")
    ap.add_argument("--zlib", action="store_true", help="write and gunzip with zlib, not ISA-L")
    args = ap.parse_args()
    if args.zlib:
        codec._isal_zlib = codec._igzip = None
    rows, memory = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        png = write_synth(
            tmp / "png", SynthConfig(sequences=1, frames=args.png_frames, height=480, width=480)
        )
        files = sorted(png.glob("*.png"))
        rows.append(
            compare(
                "480x480 PNG (synth)",
                files,
                PreprocessConfig(time_pattern=TIME_PATTERN),
                args.repeats,
                tmp,
            )
        )
        fmi = sorted(FMI.glob("*/*.pgm.gz"))
        if fmi:
            cfg = PreprocessConfig(input_scale="fmi", time_pattern="%Y%m%d%H%M_fmi")
            rows.append(compare("FMI 1226x760 PGM.gz", fmi, cfg, args.repeats, tmp))
        else:
            print(f"FMI case skipped: {FMI} is absent")
        for n in (int(v) for v in args.memory.split(",")):
            memory.append(peak_rss(n, tmp))
    head = f"{'case':24s} {'frames':>6s} {'imageio f/s':>11s} {'own decode f/s':>14s}"
    print(f"{head} {'preprocess f/s':>14s} {'ratio':>6s} {'ratio to own':>12s} {'CPU ratio':>9s}")
    for r in rows:
        print(
            f"{r['case']:24s} {r['frames']:6d} {r['decode_fps']:11.0f}"
            f" {r['radarcast_decode_fps']:14.0f} {r['preprocess_fps']:14.0f} {r['ratio']:6.2f}"
            f" {r['ratio_to_radarcast_decode']:12.2f} {r['cpu_ratio']:9.2f}"
        )
    print(f"(ratio: preprocess time / imageio decoding time; codec: {codec.backend()})")
    print(
        f"\n{'frames':>7s} {'RSS after imports MiB':>22s} {'peak RSS MiB':>13s} {'RSS at end':>11s}"
    )
    for m in memory:
        print(
            f"{m['frames']:7d} {m['rss_after_imports_mib']:22.1f} {m['peak_rss_mib']:13.1f}"
            f" {m['rss_at_end_mib']:11.1f}"
        )
    OUT.parent.mkdir(exist_ok=True)
    out = OUT.with_name("preprocess_speed_zlib.json") if args.zlib else OUT
    out.write_text(
        json.dumps(
            {
                "goal": "preprocess time <= 1.5x bare imageio decoding time; flat peak memory",
                "codec": codec.backend(),
                "medians_of": args.repeats,
                "load_average_1_5_15_min": os.getloadavg(),
                "cpu_count": os.cpu_count(),
                "machine": platform.platform(),
                "python": platform.python_version(),
                "throughput": rows,
                "memory": memory,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
