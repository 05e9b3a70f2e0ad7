"""Writing frames atomically as GIF, MP4 (optional extra ``radarcast[video]``) or PNG."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from radarcast.animation.config import FORMATS, VIDEO_HINT
from radarcast.animation.gif import encode_gif
from radarcast.errors import RadarcastError


# --------------------------------------------------------------------------- output
def check_format(path: str | os.PathLike) -> str:
    """The output's extension, checked; '.mp4' also needs the video extra."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise RadarcastError(f"{path}: unsupported output type {suffix or '(none)'!r}; "
                             f"use one of: {', '.join(FORMATS)}")
    if suffix == ".mp4":
        require_video()
    return suffix


def require_video():
    """The imageio_ffmpeg module, or a RadarcastError saying how to install it."""
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        raise RadarcastError(f"writing .mp4 needs imageio-ffmpeg: {VIDEO_HINT}") from None
    return imageio_ffmpeg


def _write_mp4(path: Path, frames, fps: float) -> None:
    ffmpeg = require_video()
    writer = None
    for frame in frames:
        if writer is None:  # H.264 in yuv420p wants sizes divisible by 16: pad with white
            h, w = (-(-s // 16) * 16 for s in frame.shape[:2])
            writer = ffmpeg.write_frames(str(path), (w, h), fps=fps, codec="libx264", quality=8,
                                         output_params=["-f", "mp4"], ffmpeg_log_level="error")
            writer.send(None)
        padded = np.full((h, w, 3), 255, np.uint8)
        padded[: frame.shape[0], : frame.shape[1]] = frame
        writer.send(padded)
    if writer is not None:
        writer.close()


def write_output(
    path: str | os.PathLike, frames, fps: float = 4.0, overwrite: bool = True
) -> Path:
    """Write frames ((H, W, 3) uint8 each) as .gif/.mp4, or one image as .png, atomically."""
    import imageio.v3 as iio

    from radarcast.data.store import place, temporary_path

    path = Path(path)
    suffix = check_format(path)
    tmp = temporary_path(path, suffix)
    try:
        # GIF/PNG are encoded in memory and written by Python: a failed write (full or
        # read-only disk) is then one OSError, not a plugin retrying in its destructor
        if suffix == ".gif":
            tmp.write_bytes(encode_gif(frames, fps))  # one exact palette for all frames
        elif suffix == ".mp4":
            _write_mp4(tmp, frames, fps)
        else:
            tmp.write_bytes(iio.imwrite("<bytes>", np.asarray(frames), extension=".png"))
        place(tmp, path, overwrite)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
