"""Checkpoints: one file that rebuilds a trained model and resumes its training.

A checkpoint is a ``torch.save`` dict (format ``radarcast-checkpoint/1``) holding plain
values and tensors only, so it loads with ``weights_only=True``:

    format, version, model (registry name), model_config (dict), state_dict (weights of the
    uncompiled, unwrapped module), units (the dataset's pixel scale), n_in, n_out,
    train_config (dict), and for resuming: step, epoch, batch_in_epoch, best_val,
    bad_evals, optimizer, scheduler, rng.

Writes are atomic: a temporary file in the same folder, then ``os.replace``.
"""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radarcast import __version__
from radarcast.config import count_or, to_dict
from radarcast.data.store import temporary_path
from radarcast.data.units import Units
from radarcast.errors import RadarcastError
from radarcast.interface import Forecaster
from radarcast.models import build_model

FORMAT = "radarcast-checkpoint/1"
REQUIRED = ("model", "model_config", "state_dict", "units", "n_in", "n_out")
FIELD_TYPES = {"model": str, "model_config": dict, "state_dict": dict, "units": dict,
               "n_in": int, "n_out": int}


def save_checkpoint(path: str | os.PathLike, **fields: Any) -> Path:
    """Write ``fields`` (see the module doc) atomically to ``path``."""
    path = Path(path)
    data = {"format": FORMAT, "version": __version__, **fields}
    tmp = temporary_path(path)
    try:
        try:
            torch.save(data, tmp)
        except RuntimeError:  # torch's writer reports a failed write (a full disk) this way
            code = errno.ENOSPC if shutil.disk_usage(tmp.parent).free < 2**20 else errno.EIO
            msg = f"cannot write the checkpoint ({os.strerror(code)})"
            raise OSError(code, msg, str(path)) from None
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _unreadable_reason(e: BaseException) -> str:
    """Why torch.load refused a file, in radarcast's words (torch's text is not shown)."""
    if isinstance(e, pickle.UnpicklingError) and "Unsupported global" in str(e):
        return (
            "is not a radarcast checkpoint: it holds Python objects, which radarcast never loads"
        )
    if isinstance(e, MemoryError):
        return "not a readable radarcast checkpoint (it needs more memory than is free)"
    if isinstance(e, OSError) and not isinstance(e, zipfile.BadZipFile):
        why = os.strerror(e.errno) if e.errno else "read error"
        return f"not a readable radarcast checkpoint ({why})"
    return "not a readable radarcast checkpoint (damaged, truncated or another file type)"


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint; a missing, corrupt or foreign file raises RadarcastError."""
    path = Path(path)
    if not path.is_file():
        raise RadarcastError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (
        RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError,
        OSError, IndexError, KeyError, TypeError, AttributeError, MemoryError,
    ) as e:  # a damaged file surfaces from torch's unpickler in any of these
        raise RadarcastError(f"{path}: {_unreadable_reason(e)}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise RadarcastError(
            f"{path}: not a radarcast checkpoint (format {found!r}, expected {FORMAT!r})"
        )
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise RadarcastError(f"{path}: checkpoint lacks {', '.join(missing)}")
    for key, kind in FIELD_TYPES.items():
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise RadarcastError(
                f"{path}: checkpoint field {key!r} is a {type(data[key]).__name__}, "
                f"expected {kind.__name__}"
            )
    if data["n_in"] < 1 or data["n_out"] < 1:
        raise RadarcastError(
            f"{path}: n_in and n_out must be ≥ 1, got {data['n_in']} and {data['n_out']}"
        )
    return data


def model_from_checkpoint(data: dict, path: str | os.PathLike = "checkpoint") -> torch.nn.Module:
    """Rebuild the model of a loaded checkpoint and load its weights."""
    try:
        model = build_model(data["model"], data["model_config"])
    except RadarcastError as e:
        raise RadarcastError(f"{path}: {e}") from None
    except (TypeError, ValueError, RuntimeError, MemoryError) as e:  # e.g. absurd layer sizes
        raise RadarcastError(
            f"{path}: model {data['model']!r} cannot be built from its config "
            f"({' '.join(str(e).split())[:160]})"
        ) from None
    try:
        model.load_state_dict(data["state_dict"])
    except (RuntimeError, TypeError, ValueError) as e:
        raise RadarcastError(
            f"{path}: weights do not fit model {data['model']!r} "
            f"({' '.join(str(e).split())[:160]})"
        ) from None
    return model


def rng_state() -> dict:
    """Every RNG state that training touches, as plain values and tensors."""
    import random

    np_state = np.random.get_state()  # noqa: NPY002 - the legacy global state is saved too
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` saved."""
    import random

    random.setstate(state["python"])
    kind, keys, *rest = state["numpy"]
    legacy = (kind, keys.numpy().astype(np.uint32), *rest)
    np.random.set_state(legacy)  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RadarcastError(f"device {device!r} asked for, but CUDA is not available")
    if device != "cpu" and not device.startswith("cuda"):
        raise RadarcastError(f"unknown device {device!r}; choose one of: auto, cpu, cuda")
    return torch.device(device)


def load_forecaster(
    path: str | os.PathLike,
    dataset=None,
    n_in: int | None = None,
    n_out: int | None = None,
    device: str = "auto",
    batch_size: int | str = 8,
):
    """A :class:`~radarcast.interface.Forecaster` running a trained checkpoint.

    Parameters
    ----------
    path
        A ``.pt`` file written by ``radarcast train``.
    dataset
        The dataset it will run on; its pixel scale must match the training data's.
    n_in, n_out
        Input frames read and leads made; the checkpoint's when None.
    device
        'auto' (CUDA when present), 'cpu' or 'cuda'.
    batch_size
        Windows per call.
    """
    path = Path(path)
    data = load_checkpoint(path)
    fields = {k: v for k, v in data["units"].items() if k != "nodata"}
    try:
        units = Units(**fields)
    except (TypeError, ValueError) as e:
        raise RadarcastError(
            f"{path}: checkpoint units {fields!r} are not a pixel scale ({e})"
        ) from None
    if dataset is not None and _scale(dataset.units) != _scale(units):
        raise RadarcastError(
            f"{path}: trained on pixel scale {describe_scale(units)}, "
            f"but {dataset.path} uses {describe_scale(dataset.units)}"
        )
    dev = _pick_device(str(device))
    model = model_from_checkpoint(data, path).to(dev).eval()
    n_in = count_or(n_in, data["n_in"], "--n-in")
    n_out = count_or(n_out, data["n_out"], "--n-out")

    def predict(x: np.ndarray, n: int) -> np.ndarray:
        xt = torch.from_numpy(np.nan_to_num(x, nan=0.0) / 255.0).float()  # (B, n_in, H, W)
        xt = xt.unsqueeze(2).to(dev)  # (B, n_in, 1, H, W)
        with (
            torch.inference_mode(),
            torch.autocast(dev.type, torch.bfloat16, enabled=dev.type == "cuda"),
        ):
            y = model(xt, n)  # (B, n, 1, H, W) in [0, 1]
        return (y[:, :, 0].float() * 255.0).cpu().numpy()  # (B, n, H, W) pixels

    name = path.parent.name if path.stem in ("best", "last") else path.stem
    config = {
        "method": "checkpoint",
        "checkpoint": str(path.resolve()),
        "model": data["model"],
        "model_config": data["model_config"],
        "step": data.get("step"),
        "device": str(dev),
    }
    return Forecaster(name, n_in, n_out, predict, config, int(batch_size))


def _scale(u: Units) -> tuple:
    return tuple(
        None if v is None else round(float(v), 6)
        for v in (u.dbz_gain, u.dbz_offset, u.zr_a, u.zr_b)
    )


def describe_scale(u: Units) -> str:
    """'dBZ = 0.5·p − 32, Z = 223·R^1.53' (p the pixel value): the four numbers that
    :func:`_scale` compares, named."""
    gain, offset, a, b = _scale(u)
    sign = "−" if offset < 0 else "+"
    zr = "no Z–R" if a is None else f"Z = {a:g}·R^{b:g}"
    return f"dBZ = {gain:g}·p {sign} {abs(offset):g}, {zr}"


def model_config_dict(model) -> dict:
    """The public config of ``model`` as a TOML-friendly dict."""
    return to_dict(model.config)
