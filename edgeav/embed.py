"""Embedding helpers shared by index, training and eval: sound files → 1 s windows → one pooled vector."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgeav.models.av import AVModel

import numpy as np
import torch

from edgeav.frontends import MelSpec, WindowSpec, log_mel

PRE_ROLL_S = WindowSpec().pre_roll_s


def sound_windows(audio: np.ndarray, sr: int = 16000, hop_s: float = 0.5, max_windows: int = 16) -> np.ndarray:
    """1 s log-mel windows over a sound file, aligned like queries: the sound starts `pre_roll` s into the first
    window. Long files give several windows (evenly spread, at most `max_windows`), pooled by the caller."""
    x = np.concatenate([np.zeros(int(PRE_ROLL_S * sr), np.float32), audio.astype(np.float32)])
    n_win = max(1, int(np.ceil((len(x) - sr) / (hop_s * sr))) + 1)
    starts = np.linspace(0, max(0, len(x) - sr), min(n_win, max_windows)).astype(int)
    spec = MelSpec(sample_rate=sr)
    return np.stack([log_mel(x[s : s + sr], spec, n_frames=100) for s in starts])


@torch.no_grad()
def embed_mels(model: AVModel, mels: np.ndarray, batch: int = 64) -> np.ndarray:
    out = [model.encode_audio(torch.from_numpy(mels[i : i + batch])).numpy() for i in range(0, len(mels), batch)]
    return np.concatenate(out) if out else np.zeros((0, model.cfg.embed_dim), np.float32)


def pool(embs: np.ndarray) -> np.ndarray:
    v = embs.mean(0)
    return (v / max(np.linalg.norm(v), 1e-8)).astype(np.float32)


def embed_sound_file(
    encode_audio: Callable[[np.ndarray], np.ndarray], path: str | Path, max_seconds: float
) -> np.ndarray:
    """One library file → one unit vector: its 1 s windows (aligned like queries) encoded and pooled.
    `encode_audio` maps log-mels (N, 100, 64) to embeddings (N, D) — a backend's method or a model wrapper."""
    from edgeav.io.audio import read_audio

    return pool(encode_audio(sound_windows(read_audio(path, 16000, max_seconds=max_seconds))))
