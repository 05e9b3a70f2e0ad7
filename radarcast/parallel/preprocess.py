"""``preprocess`` with the decoding spread over workers and one writer: the same dataset.

Inputs of one frame per file (images, pysteps products) are cut into chunks of files in
order; each worker reads and rescales its chunk (:func:`radarcast.data.preprocess.transformed`)
and sends the frames back; the parent writes them, in input order, through the one
:class:`~radarcast.data.store.DatasetWriter`, with a bounded number of chunks in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from radarcast.errors import RadarcastError
from radarcast.parallel.engine import Runner

FILES_PER_CHUNK = 8
ONE_FRAME_PER_FILE = ("images", "pysteps")


@dataclass(frozen=True)
class DecodeShard:
    kind: str
    paths: tuple[str, ...]
    opts: object  # radarcast.data.raw.ReadOptions
    config: object  # radarcast.data.preprocess.PreprocessConfig


@dataclass(frozen=True)
class InputGrid:
    """What the writer's grid checks read of a raw frame (its shape), without its pixels."""

    shape: tuple[int, ...]


def decode_shard(shard: DecodeShard) -> list[tuple]:
    """Run in a worker: (raw without its pixels, frame, mask) for each file of the chunk."""
    from radarcast.data.preprocess import transformed

    paths = [Path(p) for p in shard.paths]
    return [
        (raw._replace(frame=InputGrid(raw.frame.shape), mask=None), frame, mask)
        for raw, frame, mask in transformed(shard.kind, paths, shard.opts, shard.config)
    ]


def sharded_decoder(runner: Runner):
    """A ``decoder`` for :func:`radarcast.data.preprocess.preprocess` that runs on ``runner``."""

    def decode(kind: str, paths: list[Path], opts, config):
        from radarcast.data.preprocess import with_times

        if kind not in ONE_FRAME_PER_FILE:
            raise RadarcastError(
                f"--workers/--scheduler decode inputs of one frame per file "
                f"({', '.join(ONE_FRAME_PER_FILE)}); {kind} inputs are read by one process"
            )
        names = [str(Path(p).resolve()) for p in paths]
        runner.check_paths(readable=names)
        shards = [
            DecodeShard(kind, tuple(names[i : i + FILES_PER_CHUNK]), opts, config)
            for i in range(0, len(names), FILES_PER_CHUNK)
        ]
        stream = (item for chunk in runner.imap(decode_shard, shards) for item in chunk)
        return with_times(stream, config)

    return decode
