"""What a new user meets first: the README's real-data commands, datasets without windows,
each service's own Z–R, shell completion and exit codes, the wording of summaries."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_cli

from radarcast.data.preprocess import PreprocessConfig, preprocess
from radarcast.data.store import open_dataset
from radarcast.errors import RadarcastError


def _shared_root():
    """The folder that holds data/pysteps-data: ../shared next to the checkout, or
    $RADARCAST_SHARED (a worktree elsewhere can point at the same data)."""
    for root in (REPO.parent / "shared", Path(os.environ.get("RADARCAST_SHARED", "/nonexistent"))):
        if (root / "data" / "pysteps-data").is_dir():
            return root
    return None


def _cli(*args, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", "radarcast", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def readme_real_data_commands() -> list[list[str]]:
    """The commands of the README's code block that starts with '# real data', each as argv,
    continuation lines joined, exactly as a shell would split them."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    block = next((b for b in blocks if b.lstrip().startswith("# real data")), None)
    assert block is not None, "README.md has no ```bash block starting with '# real data'"
    joined = block.replace("\\\n", " ")
    lines = [ln.strip() for ln in joined.splitlines()]
    return [shlex.split(ln) for ln in lines if ln and not ln.startswith("#")]


def test_readme_real_data_block_is_found_and_is_radarcast():
    commands = readme_real_data_commands()
    assert len(commands) >= 2
    assert all(argv[0] == "radarcast" for argv in commands)
    assert commands[0][1] == "preprocess"


def _run_readme_commands(tmp_path, count: int | None = None) -> Path:
    """Run the README's real-data commands (the first ``count``) from a checkout that has
    ../shared/data beside it, as printed; returns the checkout folder."""
    root = _shared_root()
    if root is None:
        pytest.skip("real radar data not present at ../shared/data (or $RADARCAST_SHARED)")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (tmp_path / "shared").symlink_to(root)
    for argv in readme_real_data_commands()[:count]:
        r = run_cli(*argv[1:], cwd=checkout)  # in-process: the same app, as printed
        assert r.returncode == 0, f"{shlex.join(argv)}\n{r.stdout}\n{r.stderr}"
        assert "warning" not in r.stderr, r.stderr
    return checkout


def test_readme_real_data_dataset_has_windows_in_every_split(tmp_path):
    """The README's preprocess and info, as printed: a dataset with test windows."""
    checkout = _run_readme_commands(tmp_path, count=2)
    with open_dataset(checkout / "mch.h5") as ds:
        assert all(c["windows"] > 0 for c in ds.split_counts().values())
        assert (ds.units.zr_a, ds.units.zr_b) == (316.0, 1.5)


@pytest.mark.nightly
def test_readme_real_data_commands_run_as_printed(tmp_path):
    """Every real-data command of the README ends with exit code 0 (about a minute on 2
    busy cores: RADARCAST_NIGHTLY=1 pytest -m nightly)."""
    checkout = _run_readme_commands(tmp_path)
    assert (checkout / "mch-scores" / "scores.json").exists()
    assert (checkout / "mch-case.gif").stat().st_size < 1_500_000


# ------------------------------------------------------------------ windows per split
def _stack(tmp_path, frames: int, sequences: int = 1):
    a = np.random.default_rng(0).integers(0, 200, (sequences, frames, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "s.npy", a)
    return tmp_path / "s.npy"


def test_no_window_in_any_split_is_refused_and_nothing_written(tmp_path):
    src = _stack(tmp_path, 6)
    with pytest.raises(RadarcastError, match="no window of 5\\+12 frames in any split"):
        preprocess([src], tmp_path / "d.h5", PreprocessConfig(n_in=5, n_out=12))
    assert not (tmp_path / "d.h5").exists()
    assert not list(tmp_path.glob(".d.h5*"))


def test_cli_no_window_one_line_exit_1_old_file_kept(tmp_path):
    src = _stack(tmp_path, 6)
    (tmp_path / "d.h5").write_bytes(b"keep")
    r = run_cli("preprocess", src, "-o", tmp_path / "d.h5", "--n-in", 5, "--n-out", 12,
                "--overwrite")
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "no window" in r.stderr
    assert (tmp_path / "d.h5").read_bytes() == b"keep"


def test_empty_split_warns_with_a_split_that_works(tmp_path):
    src = _stack(tmp_path, 40)  # one 40-frame event: 0.8/0.1/0.1 leaves 4 frames to test
    notes = []
    cfg = PreprocessConfig(n_in=5, n_out=12)
    preprocess([src], tmp_path / "d.h5", cfg, warn=notes.append)
    assert len(notes) == 1 and "val and test splits have no window" in notes[0]
    suggested = re.search(r"--split ([\d.,]+)", notes[0]).group(1)
    fractions = tuple(float(v) for v in suggested.split(","))
    again = []
    cfg = PreprocessConfig(n_in=5, n_out=12, split=fractions, overwrite=True)
    preprocess([src], tmp_path / "d.h5", cfg, warn=again.append)
    assert again == []
    with open_dataset(tmp_path / "d.h5") as ds:
        counts = ds.split_counts(5, 12)
    assert counts["test"]["windows"] > 0 and counts["train"]["windows"] > 0


def test_cli_summary_warns_on_stderr_and_describes_the_cut_run(tmp_path):
    src = _stack(tmp_path, 40)
    r = run_cli("preprocess", src, "-o", tmp_path / "d.h5", "--n-in", 5, "--n-out", 12)
    assert r.returncode == 0, r.stderr
    assert "warning:" in r.stderr and "--split" in r.stderr
    assert "1 unbroken run, cut into 3 segments by the split" in " ".join(r.stdout.split())
    assert "1 segments" not in r.stdout


def test_segment_counts_are_singular_when_one(tmp_path):
    src = _stack(tmp_path, 20)
    r = run_cli(
        "preprocess", src, "-o", tmp_path / "d.h5", "--n-in", 2, "--n-out", 2, "--split", "1,0,0"
    )
    assert r.returncode == 0, r.stderr
    assert "1 segment;" in r.stdout and "1 segments" not in r.stdout


# ------------------------------------------------------------------ Z–R of each service
@pytest.mark.parametrize(
    ("config", "zr", "origin"),
    [
        (PreprocessConfig(), (58.53, 1.56), "--scale hko"),
        (PreprocessConfig(input_scale="mch"), (316.0, 1.5), "--input-scale mch"),
        (PreprocessConfig(input_scale="fmi"), (223.0, 1.53), "--input-scale fmi"),
        (PreprocessConfig(format="pysteps:fmi_pgm"), (223.0, 1.53), "pysteps importer fmi_pgm"),
        (PreprocessConfig(format="pysteps:knmi_hdf5"), (200.0, 1.6), "pysteps importer knmi"),
        (PreprocessConfig(input_scale="fmi", zr_a=316.0, zr_b=1.5), (316.0, 1.5), "--zr-a"),
    ],
)
def test_each_service_brings_its_own_zr(config, zr, origin):
    a, b, where = config.zr_source()
    assert (a, b) == zr and where.startswith(origin)
    target = config.target_units()
    assert (target.zr_a, target.zr_b) == zr
    assert (target.dbz_gain, target.dbz_offset) == (70.0 / 255.0, -10.0)  # HKO pixels still


def test_mch_half_mm_per_hour_is_meteoswiss_reflectivity(tmp_path):
    """0.5 mm/h under Z = 316 R^1.5 is 20.5 dBZ (HKO's Z–R would say 13.0 dBZ)."""
    u = PreprocessConfig(input_scale="mch").target_units()
    assert float(u.rain_to_dbz(0.5)) == pytest.approx(10 * np.log10(316 * 0.5**1.5))
    assert float(u.rain_to_dbz(0.5)) == pytest.approx(20.48, abs=0.01)


def test_info_names_the_zr_and_where_it_came_from(tmp_path):
    src = _stack(tmp_path, 10)
    r = run_cli(
        "preprocess",
        src,
        "-o",
        tmp_path / "d.h5",
        "--input-scale",
        "fmi",
        "--n-in",
        2,
        "--n-out",
        2,
        "--split",
        "1,0,0",
    )
    assert r.returncode == 0, r.stderr
    r = run_cli("info", tmp_path / "d.h5")
    text = " ".join(r.stdout.split())
    assert "Z = 223 R^1.53 (from --input-scale fmi); 0.5 mm/h = 18.9 dBZ" in text


# ------------------------------------------------------------------ CLI conventions
def test_show_completion_prints_a_bash_script():
    """`--show-completion` takes no shell name: it prints the script of the shell it was
    started from (shellingham looks up the process's parents). Run from bash here, so the
    answer does not depend on what started pytest: a run whose launching shell has exited is
    re-parented to init, and the lookup then found no shell at all ("Shell  not supported")."""
    cmd = shlex.join([sys.executable, "-m", "radarcast", "--show-completion"])
    r = subprocess.run(["bash", "-c", f"{cmd}; exit $?"], capture_output=True, text=True,
                       cwd=REPO)  # the second command keeps bash from exec-ing python
    assert r.returncode == 0, r.stderr
    assert "_radarcast_completion" in r.stdout and "complete_bash" in r.stdout


def test_completion_completes_a_command_name():
    env = {
        **os.environ,
        "_RADARCAST_COMPLETE": "complete_bash",
        "COMP_WORDS": "radarcast prepro",
        "COMP_CWORD": "1",
    }
    r = subprocess.run(
        [sys.executable, "-m", "radarcast"], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert r.stdout.split() == ["preprocess"]


def test_usage_error_and_data_error_are_both_one_line_exit_1(tmp_path):
    u = _cli("info", "--no-such-flag")  # Click's usage box and exit 2 before (issue 21)
    assert u.returncode == 1 and u.stderr.strip().splitlines() == [
        "error: no such option: --no-such-flag (see radarcast info --help)"]
    r = _cli("info", tmp_path / "missing.h5")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1


def test_command_summaries_are_one_line_each():
    """The first paragraph of each command's docstring is the line `radarcast --help` shows;
    a line break inside it breaks the sentence in the help table."""
    import typer.main

    from radarcast.cli import app

    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():
        first = (cmd.callback.__doc__ or "").strip().split("\n\n")[0]
        assert first and "\n" not in first, name
