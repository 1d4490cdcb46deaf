"""Events from a frame stream: the model's event head scores every frame, and a frame is an onset when its score
clears the calibrated threshold and is the highest within `gap` frames either side (ties: the earlier frame).

The same rule runs offline over a clip's scores (`pick_onsets`, for calibration and benchmarks) and online
(`EventDetector`, in `edgeav run`): an onset is known `after` + `gap` frames past its own frame, the lookahead the
head and the peak test need — 160 ms at 25 fps with the shipped settings.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EventSpec:
    """The event head's geometry, as the runtime needs it."""

    fps: float
    before: int
    after: int

    @property
    def length(self) -> int:
        """Frames the temporal layer reads: `before` + the candidate + `after`."""
        return self.before + 1 + self.after


def frame_pair(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Two uint8 frames (H, W, 3) → the event head's per-frame input (1, 2, 3, H, W) in [0, 1]."""
    return np.stack([prev, cur])[None].transpose(0, 1, 4, 2, 3).astype(np.float32) * np.float32(1 / 255)


def pick_onsets(scores: np.ndarray, threshold: float, gap: int) -> np.ndarray:
    """Frame indices of onsets in a clip's per-frame scores (NaN where a frame has no score)."""
    s = np.where(np.isnan(scores), -np.inf, scores)
    n, out = len(s), []
    for i in np.flatnonzero(s >= threshold):
        lo, hi = max(0, i - gap), min(n, i + gap + 1)
        if s[i] > s[lo:i].max(initial=-np.inf) and s[i] >= s[i + 1 : hi].max(initial=-np.inf):
            out.append(i)
    return np.asarray(out, dtype=np.int64)


@dataclass
class Event:
    """One detected onset: the frame's time, the event head's probability, and its embedding (1, E)."""

    t: float
    confidence: float
    embedding: np.ndarray
    attention: np.ndarray | None = None
    arrived: float | None = None  # perf_counter when its frame arrived (live delay)
    frame: np.ndarray | None = None  # the event's frame (for --explain)


Encode = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
Score = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class EventDetector:
    """Feed it every frame (uint8 H×W×3 at the head's rate) with its time; it returns the onsets it is sure of.

    `encode(prev, cur)` maps two consecutive frames to the current frame's code and attention; `score(codes)` maps
    `spec.length` codes to (logit, embedding) of the frame `spec.before` into them (the backend's event calls).
    """

    def __init__(self, spec: EventSpec, threshold: float, gap: int, encode: Encode, score: Score) -> None:
        self.spec, self.threshold, self.gap = spec, threshold, gap
        self.encode, self.score = encode, score
        self.prev: np.ndarray | None = None
        self.codes: deque = deque(maxlen=spec.length)  # (t, code, attention, arrived, frame)
        self.scored: deque = deque(maxlen=2 * gap + 1)  # (t, logit, embedding, attention, arrived, frame)

    def push(self, t: float, frame: np.ndarray, arrived: float | None = None) -> list[Event]:
        code, attn = self.encode(self.prev if self.prev is not None else frame, frame)
        self.prev = frame
        self.codes.append((t, code, attn, arrived, frame))
        if len(self.codes) < self.spec.length:
            return []
        logit, emb = self.score(np.stack([c[1] for c in self.codes])[None])
        t_c, _, attn_c, arrived_c, frame_c = self.codes[self.spec.before]
        self.scored.append((t_c, float(logit[0]), emb, attn_c, arrived_c, frame_c))
        return self._decide()

    def _decide(self) -> list[Event]:
        """The candidate `gap` frames back is an onset if it clears the threshold and its neighbourhood."""
        if len(self.scored) <= self.gap:
            return []
        i = len(self.scored) - 1 - self.gap
        t, s, emb, attn, arrived, frame = self.scored[i]
        if s < self.threshold:
            return []
        before = [x[1] for x in list(self.scored)[:i]]
        after = [x[1] for x in list(self.scored)[i + 1 :]]
        if any(b >= s for b in before) or any(a > s for a in after):
            return []
        return [Event(t, float(1 / (1 + np.exp(-s))), emb, attn, arrived, frame)]

    def flush(self) -> list[Event]:
        """At the end of the source: the last `gap` candidates, judged against the frames there are."""
        out = []
        for _ in range(self.gap):
            self.scored.append((float("inf"), -np.inf, None, None, None, None))
            out += self._decide()
        return out
