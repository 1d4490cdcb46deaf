"""Auto-foley: the input video with the recommended effects mixed into its audio track where they were placed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgeav.bank import SoundBank

from collections import deque
from fractions import Fraction
from pathlib import Path

import numpy as np

from edgeav.atomic import atomic_path
from edgeav.errors import EdgeavError
from edgeav.io import VideoFile, read_audio

RATE = 44100
CHUNK_S = 1.0
CHANGE_LEVEL = 30  # of 255: a pixel "changed" if a channel moved more than this between the window's frames


def frame_change(stack: np.ndarray) -> float:
    """Fraction of pixels of a window's uint8 frame stack (T, H, W, 3) whose largest channel difference between the
    first and the last frame exceeds CHANGE_LEVEL. Auto-foley places effects where the picture changes: an effect
    starts where something happens, and the model's top score does not tell those moments from quiet ones
    (edgeav_train.evaluate.calibrate_foley measures both on the val split)."""
    d = np.abs(stack[-1].astype(np.int16) - stack[0].astype(np.int16)).max(-1)
    return float((d > CHANGE_LEVEL).mean())


class ChangeGate:
    """Places an effect on a window whose picture changes more than all but a `rate` fraction of the last `history`
    windows of the same footage. Relative, because games differ in how much moves all the time (on the bundled
    clips the median change is 2% of pixels for solarwolf and 4% for funnyboat): one absolute threshold would place
    nothing in the one and everywhere in the other. Works on live sources too: only past windows are used."""

    def __init__(self, rate: float, history: int = 30, warmup: int = 3) -> None:
        self.rate, self.warmup = rate, warmup
        self.recent: deque[float] = deque(maxlen=history)

    def __call__(self, stack: np.ndarray) -> bool:
        c = frame_change(stack)
        self.recent.append(c)
        # strictly above: footage that does not move at all gets nothing
        return len(self.recent) >= self.warmup and c > float(np.quantile(np.asarray(self.recent), 1 - self.rate))


def _sound_path(bank: SoundBank, sound_id: str) -> Path:
    for root in bank.meta.get("roots", []):
        p = Path(root) / sound_id
        if p.exists():
            return p
    raise EdgeavError(
        f"sound {sound_id} of the bank is not on disk under {bank.meta.get('roots')}",
        "re-index the sound folder (edgeav index)",
    )


def write_foley_video(
    source: str, out: str, placements: list[tuple[float, str, float]], bank: SoundBank, effect_gain: float = 0.8
) -> Path:
    """Re-encode `source` (H.264 + AAC) with each (t, sound, score) of `placements` mixed in at t. The original
    soundtrack is kept under the effects; audio is processed in 1 s chunks (constant memory)."""
    import av

    sounds = {sid: read_audio(_sound_path(bank, sid), RATE, max_seconds=30.0) for sid in {p[1] for p in placements}}
    v = VideoFile(source, sample_rate=RATE)
    out = Path(out)
    with atomic_path(out, suffix=out.suffix or ".mp4") as tmp:
        with av.open(str(tmp), "w", format="mp4") as c:
            fps = Fraction(v.info.fps).limit_denominator(1001)
            vs = c.add_stream("libx264", rate=fps)
            vs.width, vs.height, vs.pix_fmt = (
                v.info.width - v.info.width % 2,
                v.info.height - v.info.height % 2,
                "yuv420p",
            )
            vs.options = {"crf": "23", "preset": "veryfast"}
            a = c.add_stream("aac", rate=RATE, layout="mono")
            fs = a.codec_context.frame_size or 1024
            written = 0  # audio samples written so far
            pending = np.zeros(0, np.float32)

            def write_audio_until(t_end: float) -> None:
                nonlocal written, pending
                n_target = int(t_end * RATE)
                while written + len(pending) < n_target:
                    c0 = (written + len(pending)) / RATE
                    chunk = v.audio(c0, c0 + CHUNK_S) if v.info.has_audio else np.zeros(int(CHUNK_S * RATE), np.float32)
                    for t, sid, _ in placements:
                        x, i0 = sounds[sid], int(round(t * RATE)) - int(round(c0 * RATE))
                        lo, hi = max(i0, 0), min(i0 + len(x), len(chunk))
                        if hi > lo:
                            chunk[lo:hi] += effect_gain * x[lo - i0 : hi - i0]
                    pending = np.concatenate([pending, np.clip(chunk, -1, 1)])
                while len(pending) >= fs:
                    af = av.AudioFrame.from_ndarray(pending[None, :fs].copy(), format="fltp", layout="mono")
                    af.sample_rate, af.pts, af.time_base = RATE, written, Fraction(1, RATE)
                    for p in a.encode(af):
                        c.mux(p)
                    written += fs
                    pending = pending[fs:]

            k = 0
            for t, img in v.frames():
                f = av.VideoFrame.from_ndarray(img[: vs.height, : vs.width], format="rgb24")
                f.pts, f.time_base = k, Fraction(1, 1) / fps
                for p in vs.encode(f):
                    c.mux(p)
                k += 1
                write_audio_until(t + 0.5)
            write_audio_until(k / float(fps))
            for s in (a, vs):
                for p in s.encode(None):
                    c.mux(p)
    v.close()
    return out
