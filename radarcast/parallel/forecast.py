"""Forecast files made by many workers: one part file per shard, assembled atomically.

The parent plans the windows (the same checks and the same batches as
:func:`radarcast.forecasters.write_forecast`), cuts them into shards of whole batches, and
each worker opens the dataset by path, resolves the same forecaster with one thread and
writes its shard's windows into a part file in a hidden folder beside the output. The parent
then copies the parts, in window order, into one forecast file through the same
:class:`~radarcast.data.forecast_writer.ForecastWriter`: its arrays are those of the
single-process file bit for bit. A failed or interrupted run removes the folder and leaves
no output.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radarcast.errors import RadarcastError
from radarcast.parallel.engine import Progress, Runner


@dataclass(frozen=True)
class ForecastShard:
    """Everything a worker needs for one shard; small, picklable, no arrays of frames."""

    dataset: str  # absolute path, opened on the worker
    content_hash: str  # the parent's dataset identity: a different file is refused
    spec: str
    options: dict
    n_in: int
    n_out: int
    split: str | None
    batch_size: int
    starts: np.ndarray  # (n,) int64 window starts of this shard
    part: str  # the part file to write


def open_on_worker(path: str, content_hash: str):
    """Open the dataset a shard names; RadarcastError when this worker cannot see it or
    sees another file under that name."""
    import socket

    from radarcast.data.store import open_dataset

    if not os.path.isfile(path):
        raise RadarcastError(
            f"{path}: no such dataset file on worker host {socket.gethostname()} "
            "(give a path on a file system every worker shares)"
        )
    ds = open_dataset(path)
    if ds.identity(fingerprint=False)["content_hash"] != content_hash:
        ds.close()
        raise RadarcastError(
            f"{path} on worker host {socket.gethostname()} is another dataset than the one "
            "the run was planned on"
        )
    return ds


def forecast_shard(shard: ForecastShard) -> str:
    """Run in a worker: forecast the shard's windows into its part file; returns its path."""
    from radarcast.forecasters import resolve, write_windows
    from radarcast.parallel.engine import shard_progress

    with open_on_worker(shard.dataset, shard.content_hash) as ds:
        fc = resolve(shard.spec, ds, n_in=shard.n_in, n_out=shard.n_out, options=shard.options)
        part = write_windows(ds, fc, shard.part, shard.starts, shard.n_in, shard.split,
                             shard.batch_size, overwrite=True, progress=shard_progress)
        return str(part)


def parts_folder(output: Path) -> Path:
    """A new hidden folder beside ``output`` for its part files; stale folders of runs
    that were killed on this machine (their process is gone) are removed first."""
    for old in output.parent.glob(f".{output.name}.*.parts"):
        pid = old.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    folder = output.with_name(f".{output.name}.{os.getpid()}.parts")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_forecast_sharded(
    dataset_path, spec: str, output, runner: Runner, *, options: dict | None = None,
    split: str | None = "test", n_in: int | None = None, n_out: int | None = None,
    limit: int | None = None, batch_size: int | None = None, overwrite: bool = False,
    progress: Progress | None = None, stride: int = 1,
) -> Path:
    """:func:`radarcast.forecasters.write_forecast` with the windows spread over ``runner``'s
    workers; the same file (arrays and attributes but ``created_by``/``created_at``).

    Parameters are those of ``write_forecast`` (the forecaster given as ``spec`` and
    ``options`` for :func:`radarcast.forecasters.resolve`, since each worker builds its
    own); ``progress(done, total)`` counts windows over all shards (batch by batch on
    local workers, shard by shard on a Dask cluster).
    """
    from radarcast.config import count_or
    from radarcast.data.store import check_output, open_dataset
    from radarcast.forecasters import plan_windows, resolve

    count_or(batch_size, 1, "--batch-size")  # a 0 is refused before anything is opened
    output = check_output(output, overwrite)
    path = str(Path(dataset_path).resolve())
    with open_dataset(path) as ds:
        fc = resolve(spec, ds, n_in=n_in, n_out=n_out, options=options)
        starts, n_in = plan_windows(ds, fc, split, n_in, limit, stride)
        ident = ds.identity(fingerprint=False)
    bs = count_or(batch_size, fc.batch_size, "--batch-size")
    folder = parts_folder(output)
    try:
        runner.check_paths(readable=[path], writable=[folder])
        shards = [
            ForecastShard(path, ident["content_hash"], spec, dict(options or {}), n_in,
                          fc.n_out, split, bs, starts[a:b], str(folder / f"part-{k:05d}.h5"))
            for k, (a, b) in enumerate(runner.shards(len(starts), unit=bs))
        ]
        parts = runner.map(forecast_shard, shards, [len(s.starts) for s in shards], progress)
        with open_dataset(path) as ds:
            return assemble(parts, output, ds, starts, fc, n_in, split, overwrite)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def assemble(parts: list[str], output: Path, ds, starts: np.ndarray, fc, n_in: int,
             split: str | None, overwrite: bool) -> Path:
    """Copy the part files, in order, into one forecast file written atomically (their
    compressed chunks as they are: no decoding)."""
    from radarcast.data.forecast_file import open_forecast
    from radarcast.data.forecast_writer import ForecastWriter

    with ForecastWriter(
        output, ds, starts, method=fc.name, config=fc.config, n_in=n_in, n_out=fc.n_out,
        split=split, overwrite=overwrite, members=fc.members,
    ) as writer:
        done = 0
        for part in parts:
            with open_forecast(part) as ff:
                n = len(ff.starts)
                if not np.array_equal(ff.starts, starts[done : done + n]):
                    raise AssertionError(f"{part} answers other windows than planned")
            writer.append_file(part)
            done += n
        return writer.finish()
