"""The demo's settings (:class:`DemoConfig`), what it writes, and its result records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radarcast.errors import RadarcastError

EventFn = Callable[[dict], None]
DEVICES = ("auto", "cpu", "cuda")
# What run_demo writes directly under out_dir; only these are replaced with overwrite.
OUTPUT_NAMES = tuple(
    "raw dataset.h5 convlstm forecasts scores animation.gif contact_sheet.png demo.json".split()
)
RUN_NAME = "convlstm"  # the run folder, hence the method name in tables and panels
FORECAST_METHODS = ("persistence", "rover", RUN_NAME)


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo. The defaults take ~5 minutes on a busy 2-core CPU (400 steps).

    ``train_sequences`` / ``val_sequences`` / ``test_sequences`` whole synthetic sequences
    go to each split; ``size`` is the square grid in pixels; ``speed`` the largest storm
    speed in pixels per 5-minute step; ``growth`` the synth growth/decay strength.
    ``hidden`` / ``kernel`` / ``patch`` shape the ConvLSTM (``patch`` × ``patch``
    space-to-depth keeps it cheap); ``steps`` optimizer steps of ``batch_size`` windows;
    ``thresholds`` in mm/h; ``rover`` ROVER's options (fields of
    :class:`~radarcast.baselines.rover.RoverConfig`; empty: its defaults); ``window`` the
    test window drawn (None: the rainiest).
    """

    train_sequences: int = 12
    val_sequences: int = 1
    test_sequences: int = 3
    frames: int = 36
    size: int = 64
    growth: float = 1.0
    speed: float = 1.0
    cells: float = 8.0
    seed: int = 0
    n_in: int = 5
    n_out: int = 10
    hidden: tuple[int, ...] = (32,)
    kernel: int = 3
    patch: int = 4
    steps: int = 400
    batch_size: int = 8
    lr: float = 2e-3
    loss: str = "bmse"
    thresholds: tuple[float, ...] = (0.5, 2.0, 5.0, 10.0)
    rover: dict = field(default_factory=dict)
    device: str = "auto"
    window: int | None = None

    @classmethod
    def quick(cls, **changes: Any) -> DemoConfig:
        """A seconds-long variant for tests and CI: tiny grid, few frames, a few steps."""
        small = dict(
            train_sequences=3,
            val_sequences=1,
            test_sequences=1,
            frames=14,
            size=32,
            n_in=4,
            n_out=4,
            hidden=(8,),
            patch=2,
            steps=4,
            batch_size=4,
        )
        return cls(**{**small, **changes})

    @property
    def sequences(self) -> int:
        return self.train_sequences + self.val_sequences + self.test_sequences

    def check(self) -> None:
        if self.device not in DEVICES:
            raise RadarcastError(
                f"unknown device {self.device!r}; choose one of: {', '.join(DEVICES)}"
            )
        if min(self.train_sequences, self.val_sequences, self.test_sequences) < 1:
            raise RadarcastError("the demo needs at least one sequence per split")
        if self.frames < self.n_in + self.n_out:
            raise RadarcastError(
                f"demo frames ({self.frames}) must be ≥ n_in + n_out ({self.n_in + self.n_out})"
            )
        if self.steps < 1 or self.batch_size < 1:
            raise RadarcastError("demo steps and batch_size must be ≥ 1")


@dataclass
class DemoStep:
    """One finished step: its name, what it wrote, how long it took, and a short summary."""

    name: str
    outputs: dict[str, Path]
    seconds: float
    summary: str = ""


@dataclass
class DemoResult:
    """Everything :func:`run_demo` did; ``scores`` is the :class:`~radarcast.evaluation.Scores`."""

    out_dir: Path
    config: DemoConfig
    steps: list[DemoStep] = field(default_factory=list)
    scores: Any = None

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)
