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
from typing import NamedTuple

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


def frame_pairs(frames: np.ndarray) -> np.ndarray:
    """N + 1 consecutive uint8 frames (N + 1, H, W, 3) → the event head's per-frame inputs (N, 2, 3, H, W) in
    [0, 1]: each frame with the one before it."""
    out = np.empty((len(frames) - 1, 2, 3, *frames.shape[1:3]), np.float32)
    x = frames.transpose(0, 3, 1, 2)
    # scaled straight into the output: one pass over the pixels, no float copy of the frames first
    np.multiply(x[:-1], np.float32(1 / 255), out=out[:, 0], casting="unsafe")
    np.multiply(x[1:], np.float32(1 / 255), out=out[:, 1], casting="unsafe")
    return out


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


Encode = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
Score = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class ScoredFrame(NamedTuple):
    """A frame the event head scored: its time, embedding (1, E) in the bank's space, attention map and pixels."""

    t: float
    embedding: np.ndarray
    attention: np.ndarray | None
    frame: np.ndarray | None


NAMED_S = 10.0  # seconds of scored frames kept to name windows: longer than a file run's wait (a run of 64 frames
# and one of 8 windows at a 0.5 s hop)


class EventDetector:
    """Feed it every frame (uint8 H×W×3 at the head's rate) with its time; it returns the onsets it is sure of.

    `encode(frames)` maps N + 1 consecutive frames to the codes and attention maps of the last N; `score(codes)`
    maps (B, `spec.length`, D) codes to (logit, embedding) of the frame `spec.before` into each (the backend's
    event calls). `push` takes one frame (live: the lowest delay); `push_many` a run of frames in batched calls
    (files: the same events, fewer and larger calls).
    """

    def __init__(self, spec: EventSpec, threshold: float, gap: int, encode: Encode, score: Score) -> None:
        self.spec, self.threshold, self.gap = spec, threshold, gap
        self.encode, self.score = encode, score
        self.prev: np.ndarray | None = None
        self.tail: np.ndarray | None = None  # the last `length` − 1 frames' codes (the next windows' first rows)
        self.tail_of: list = []  # their (t, attention, arrived, frame)
        self.scored: deque = deque(maxlen=2 * gap + 1)  # (t, logit, embedding, attention, arrived, frame)
        # every frame scored in the last NAMED_S: what names a window's sound
        self.named: deque[ScoredFrame] = deque(maxlen=int(NAMED_S * spec.fps))

    @property
    def scored_until(self) -> float:
        """The time of the last frame scored (−inf before the first)."""
        return self.named[-1].t if self.named else float("-inf")

    def named_at(self, t: float) -> ScoredFrame | None:
        """The scored frame nearest to `t`, among the last NAMED_S; None before any frame is scored."""
        best = None
        for scored in reversed(self.named):  # from the newest: a live source's frames need not sit on a grid
            if best is None or abs(scored.t - t) < abs(best.t - t):
                best = scored
            if scored.t < t:
                break
        return best

    def push(self, t: float, frame: np.ndarray, arrived: float | None = None) -> list[Event]:
        return self.push_many([(t, frame, arrived)])

    def push_many(self, items: list[tuple[float, np.ndarray, float | None]]) -> list[Event]:
        """Frames (t, frame, arrived) in order → the onsets they make sure of, in order."""
        if not items:
            return []
        frames = [f for _, f, _ in items]
        codes, attn = self.encode(np.stack([self.prev if self.prev is not None else frames[0], *frames]))
        self.prev = frames[-1]
        codes = codes if self.tail is None else np.concatenate([self.tail, codes])
        of = self.tail_of + [(t, a, arrived, frame) for (t, frame, arrived), a in zip(items, attn)]
        keep = self.spec.length - 1
        self.tail, self.tail_of = codes[max(0, len(codes) - keep) :], of[max(0, len(of) - keep) :]
        if len(codes) < self.spec.length:
            return []
        # every window of `length` consecutive codes, as one strided view: no copy per frame
        windows = np.lib.stride_tricks.sliding_window_view(codes, self.spec.length, axis=0).transpose(0, 2, 1)
        centres = of[self.spec.before : self.spec.before + len(windows)]
        logits, embs = self.score(windows)
        out = []
        for (t_c, attn_c, arrived_c, frame_c), logit, emb in zip(centres, logits, embs):
            self.scored.append((t_c, float(logit), emb[None], attn_c, arrived_c, frame_c))
            self.named.append(ScoredFrame(t_c, emb[None], attn_c, frame_c))
            out += self._decide()
        return out

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
