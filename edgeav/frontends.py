"""The single definition of model inputs, shared by training and runtime.

- frames: RGB uint8 HxWx3 → float CHW, ImageNet-normalized (the pretrained visual backbone expects it).
- audio: mono float32 at 16 kHz → log-mel, 64 bands, 25 ms Hann window, 10 ms hop: 1 s = 100 frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


@dataclass(frozen=True)
class WindowSpec:
    """How a 1 s window is cut from footage. A window starting at s covers audio [s, s+length); the visual input is
    the frames on screen at s + frame_offsets (a short stack: what changes between them says what happened)."""

    length_s: float = 1.0
    pre_roll_s: float = 0.2  # a sound starting at te is queried with the window starting at te - pre_roll
    frame_offsets: tuple[float, ...] = (0.2, 0.4)
    frame_size: tuple[int, int] = (128, 96)  # (width, height); 4:3 like most footage
    sample_rate: int = 16000


@dataclass(frozen=True)
class MelSpec:
    sample_rate: int = 16000
    n_fft: int = 400  # 25 ms
    hop: int = 160  # 10 ms
    n_mels: int = 64
    fmin: float = 0.0
    fmax: float = 8000.0
    log_eps: float = 1e-6


_SCALE = (1.0 / (255.0 * IMAGENET_STD.astype(np.float64))).astype(np.float32)[:, None, None]
_SHIFT = (IMAGENET_MEAN.astype(np.float64) / IMAGENET_STD).astype(np.float32)[:, None, None]


def preprocess_frames(frames: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, 3) → float32 (..., 3, H, W), ImageNet-normalized: (x/255 − mean)/std as one scale and
    shift, in place after a single converting copy (the batch is read once, not five times)."""
    frames = np.asarray(frames)
    x = np.empty((*frames.shape[:-3], 3, *frames.shape[-3:-1]), np.float32)
    np.copyto(x, np.moveaxis(frames, -1, -3))
    x *= _SCALE
    x -= _SHIFT
    return x


def resize_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    if frame.shape[1] == size[0] and frame.shape[0] == size[1]:
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (as librosa's default)."""
    f = np.asarray(f, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f < min_log_hz, f / f_sp, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    m = np.asarray(m, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m < min_log_mel, m * f_sp, min_log_hz * np.exp(logstep * (m - min_log_mel)))


_FB_CACHE: dict = {}


def mel_filterbank(spec: MelSpec = MelSpec()) -> np.ndarray:
    """(n_mels, n_fft//2+1) triangular filters, Slaney area-normalized."""
    if spec in _FB_CACHE:
        return _FB_CACHE[spec]
    freqs = np.linspace(0, spec.sample_rate / 2, spec.n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(spec.fmin), hz_to_mel(spec.fmax), spec.n_mels + 2))
    fb = np.zeros((spec.n_mels, len(freqs)))
    for i in range(spec.n_mels):
        lo, c, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (freqs - lo) / (c - lo)
        down = (hi - freqs) / (hi - c)
        fb[i] = np.maximum(0, np.minimum(up, down)) * (2.0 / (hi - lo))
    _FB_CACHE[spec] = fb.astype(np.float32)
    return _FB_CACHE[spec]


def log_mel(
    audio: np.ndarray, spec: MelSpec = MelSpec(), n_frames: int | None = None, center: bool = True
) -> np.ndarray:
    """Log-mel spectrogram (n_frames, n_mels) of mono float audio. Frame k is centred on sample k*hop
    (zero padding at the edges), so frame k of a whole clip equals frame k of any window cut at a hop boundary
    away from the edges. With `n_frames`, the output is cut or zero-padded (in the power domain) to that length.
    `center=False` frames from sample 0 (frame k spans [k*hop, k*hop+n_fft)): for streaming, where the caller
    already read n_fft//2 samples of context before the first centre."""
    x = np.asarray(audio, np.float32).reshape(-1)
    if n_frames is None:
        n_frames = 1 + len(x) // spec.hop
    pad = spec.n_fft // 2 if center else 0
    need = (n_frames - 1) * spec.hop + spec.n_fft
    xp = np.zeros(max(need, len(x) + 2 * pad), np.float32)
    xp[pad : pad + len(x)] = x
    idx = np.arange(spec.n_fft)[None, :] + spec.hop * np.arange(n_frames)[:, None]
    frames = xp[idx] * np.hanning(spec.n_fft + 1)[:-1].astype(np.float32)  # periodic Hann
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    mel = power @ mel_filterbank(spec).T
    return np.log(mel + spec.log_eps).astype(np.float32)


def audio_window_frames(spec: MelSpec = MelSpec(), length_s: float = 1.0) -> int:
    return int(round(length_s * spec.sample_rate / spec.hop))
