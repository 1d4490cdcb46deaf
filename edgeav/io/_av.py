"""Shared PyAV helpers: open a container with a clear error, resample audio to mono float32."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import av

import os
from pathlib import Path

import numpy as np

from edgeav.errors import EdgeavError


def open_container(path: str | os.PathLike, kind: str = "media"):
    """Open `path` with PyAV, turning every failure into one EdgeavError line naming the file."""
    import av

    p = Path(path)
    if not p.exists():
        raise EdgeavError(f"{kind} file not found: {p}", "check the path")
    if p.is_dir():
        raise EdgeavError(f"{p} is a folder, not a {kind} file", "give a file path")
    if p.stat().st_size == 0:
        raise EdgeavError(f"{kind} file is empty (0 bytes): {p}", "re-export or re-download it")
    try:
        return av.open(str(p), metadata_errors="ignore")
    except Exception as e:  # PyAV raises many error classes (InvalidDataError, ValueError, ...)
        raise EdgeavError(
            f"cannot decode {kind} file {p}: {_short(e)}",
            "the file is corrupt, truncated or not a media file; re-encode it, e.g. with ffmpeg",
        ) from None


def _short(e: Exception) -> str:
    return " ".join(str(e).split())[:160] or type(e).__name__


def make_resampler(sample_rate: int):
    import av

    return av.AudioResampler(format="flt", layout="mono", rate=sample_rate)


def resample_frame(resampler: av.AudioResampler, frame: av.AudioFrame) -> np.ndarray:
    """Resampled mono float32 samples for one decoded audio frame (may be empty: the resampler buffers)."""
    out = resampler.resample(frame)
    if not out:
        return np.zeros(0, np.float32)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in out]).astype(np.float32, copy=False)


def flush_resampler(resampler: av.AudioResampler) -> np.ndarray:
    out = resampler.resample(None)
    if not out:
        return np.zeros(0, np.float32)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in out]).astype(np.float32, copy=False)
