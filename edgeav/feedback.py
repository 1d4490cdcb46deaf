"""Users' verdicts on suggestions, stored append-only, and folded back into the ranking.

A record: the moment (source, window start t), the sound, the verdict (accept | reject), and the embedding `run`
ranks that window by (so the store is self-contained: no re-decoding to use it; with an event head, the head's
embedding of the frame a pre-roll in, where the window's sound starts and where an event there is named, else the
window encoder's), tagged with the model id that made it. Records come from the live view (a / r keys on the top
suggestion) or from `edgeav feedback` on a run's JSONL afterwards. The file only ever grows: one JSON line per
verdict, flushed and fsynced per write; a later verdict on the same moment and sound wins.

Re-ranking is contextual: a verdict moves a sound's score in windows that look like the one judged,
    Δscore(s | v) = weight · tanh( Σ_i y_i · exp((cos(v, e_i) − 1) / tau) )   over verdicts i on sound s,
with y = +1 accept / −1 reject — an accepted explosion rises where the screen looks like that explosion, not
everywhere; tanh bounds the total move to ±weight.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgeav.backends.base import Backend
    from edgeav.bank import SoundBank
    from edgeav.events import EventSpec
    from edgeav.io.video import VideoFile

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgeav.errors import EdgeavError

VERDICTS = {"accept": 1.0, "reject": -1.0}


@dataclass
class Verdict:
    source: str
    t: float
    sound: str
    verdict: str  # accept | reject
    embedding: list[float]  # the embedding run ranks the judged window by (embed_moments)
    model_id: str
    time: float = 0.0  # when the verdict was given (unix seconds)


class FeedbackStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, verdicts: list[Verdict]) -> None:
        for v in verdicts:
            if v.verdict not in VERDICTS:
                raise EdgeavError(f"unknown verdict {v.verdict!r}", "use accept or reject")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:  # append-only: earlier verdicts are never rewritten
            for v in verdicts:
                d = asdict(v)
                d["time"] = d["time"] or time.time()
                d["embedding"] = [round(float(x), 5) for x in d["embedding"]]
                f.write(json.dumps(d) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def load(self) -> list[Verdict]:
        if not self.path.exists():
            return []
        out = []
        for i, line in enumerate(self.path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(Verdict(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as e:
                raise EdgeavError(
                    f"feedback file {self.path} line {i} is not a verdict record ({type(e).__name__})",
                    "it is append-only JSONL written by edgeav; remove the damaged line",
                ) from None
        return out


class FeedbackReranker:
    """Score adjustments for one bank from the verdicts made with the same model (embedding space)."""

    def __init__(
        self, verdicts: list[Verdict], bank: SoundBank, model_id: str, weight: float = 0.3, tau: float = 0.1
    ) -> None:
        latest: dict[tuple, Verdict] = {}
        for v in verdicts:  # the last verdict on a moment and sound wins
            latest[(v.source, round(v.t, 3), v.sound)] = v
        index = {s: i for i, s in enumerate(bank.ids)}
        usable = [v for v in latest.values() if v.model_id == model_id and v.sound in index]
        self.skipped_other_model = sum(v.model_id != model_id for v in latest.values())
        self.skipped_unknown_sound = sum(v.model_id == model_id and v.sound not in index for v in latest.values())
        self.n = len(usable)
        self.size, self.weight, self.tau = len(bank), weight, tau
        dim = bank.embeddings.shape[1]
        self.E = np.array([v.embedding for v in usable], np.float32).reshape(-1, dim)
        self.sound = np.array([index[v.sound] for v in usable], int)
        self.y = np.array([VERDICTS[v.verdict] for v in usable], np.float32)

    def adjust(self, v: np.ndarray) -> np.ndarray:
        """(len(bank),) additive score change for the window embedded as `v` (D,)."""
        delta = np.zeros(self.size, np.float32)
        if self.n:
            k = np.exp((self.E @ v.astype(np.float32) - 1.0) / self.tau)
            np.add.at(delta, self.sound, self.y * k)
        return self.weight * np.tanh(delta)

    @classmethod
    def load(cls, path: str | Path, bank: SoundBank, model_id: str, **kw: float) -> FeedbackReranker:
        return cls(FeedbackStore(path).load(), bank, model_id, **kw)


# ---------------------------------------------------------------- verdicts given after a run
def parse_marks(marks: list[str], verdict: str) -> list[tuple[float, str | None, str]]:
    """`T` or `T=SOUND` (seconds; the sound defaults to the window's top suggestion) → (t, sound, verdict)."""
    out = []
    for m in marks:
        t, _, sound = m.partition("=")
        try:
            out.append((float(t), sound or None, verdict))
        except ValueError:
            raise EdgeavError(
                f"--{verdict} {m!r} is not a time",
                "give seconds, optionally =SOUND: 12.5 or 12.5=solarwolf/explode.wav",
            ) from None
    return out


def window_start(rec: dict) -> float:
    """The start of the window a run record judges: a window line's own t; an event's, the window whose sound
    starts at the event (a pre-roll before it). A verdict's t is always this."""
    from edgeav.frontends import WindowSpec

    return rec["t"] if rec.get("type") != "event" else max(0.0, rec["t"] - WindowSpec().pre_roll_s)


def verdicts_from_run(
    run_jsonl: str | Path, marks: list[tuple[float, str | None, str]]
) -> list[tuple[float, str, str]]:
    """(window start, sound, verdict) for every judged window or event of a run's JSONL: records the user annotated
    with "verdict" (and optionally "sound"), plus `marks` matched to the record nearest in time."""
    p = Path(run_jsonl)
    if not p.exists():
        raise EdgeavError(f"run output not found: {p}", "write one with edgeav run SOURCE --jsonl FILE")
    try:
        recs = [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
        times = np.array([r["t"] for r in recs])
    except (json.JSONDecodeError, KeyError, TypeError):
        raise EdgeavError(
            f"{p} is not the JSONL of an edgeav run", "give the file written by edgeav run --jsonl"
        ) from None
    if not recs:
        raise EdgeavError(f"{p} has no windows", "run edgeav run on a longer source")
    out = []
    for r in recs:
        if "verdict" in r:
            sound = r.get("sound") or (r["recommendations"][0]["sound"] if r["recommendations"] else None)
            if r["verdict"] not in VERDICTS or sound is None:
                raise EdgeavError(f"{p}: window at {r['t']} s has verdict {r['verdict']!r}", "use accept or reject")
            out.append((window_start(r), sound, r["verdict"]))
    for t, sound, verdict in marks:
        r = recs[int(np.argmin(np.abs(times - t)))]
        if abs(r["t"] - t) > 1.0:
            raise EdgeavError(f"no window of {p} near {t} s", f"the run covers {times[0]:.1f}–{times[-1]:.1f} s")
        if sound is None and not r["recommendations"]:
            raise EdgeavError(f"window at {r['t']} s of {p} has no suggestion to judge", "name the sound: T=SOUND")
        out.append((window_start(r), sound or r["recommendations"][0]["sound"], verdict))
    return out


def embed_moments(backend: Backend, source: str, times: list[float]) -> np.ndarray:
    """The embeddings `run` ranks the windows starting at `times` in a video file by: with an event head, the head's
    embedding of the frame a pre-roll into each (the frame that names a window's sound, and an event's there);
    otherwise the window encoder's. A verdict embedded otherwise would sit in another space than the moments it
    re-ranks."""
    if backend.event_spec is not None:
        from edgeav.frontends import WindowSpec

        return head_embeddings(backend, source, [t + WindowSpec().pre_roll_s for t in times])
    return window_embeddings(backend, source, times)


def _frame_near(v: VideoFile, t: float) -> np.ndarray:
    # a moment judged near the end: its later frames are the last one on screen (the container's duration can run a
    # little past the video stream's last frame)
    for back in np.arange(0.0, 1.0, 0.04):
        try:
            return v.frame_at(max(0.0, min(t, v.duration) - back))
        except EdgeavError:
            continue
    return v.frame_at(t)  # raises the one-line error


def window_embeddings(backend: Backend, source: str, times: list[float]) -> np.ndarray:
    """The window encoder's embeddings of the windows starting at `times`, as `run` makes them."""
    from edgeav.io import VideoFile

    cfg = backend.cfg
    with VideoFile(source, fps=None, size=cfg.frame_size) as v:
        stacks = np.stack([np.stack([_frame_near(v, t + o) for o in cfg.frame_offsets]) for t in times])
    return np.asarray(backend.encode_visual(stacks), np.float32)


def head_embeddings(backend: Backend, source: str, times: list[float]) -> np.ndarray:
    """The event head's embeddings (len(times), E) of the frames at `times`, each read as `run` reads it: with the
    head's `before` frames ahead and `after` past it on the head's frame grid; a time the head cannot score (too
    near either end) takes the nearest frame it can, as `run` names a window there."""
    from edgeav.io import VideoFile

    spec = backend.event_spec
    out = []
    with VideoFile(source, fps=spec.fps, size=backend.cfg.frame_size) as v:
        for t in times:
            codes, _ = backend.encode_event_frames(_head_context(v, int(round(t * spec.fps)), spec))
            _, emb = backend.score_events(codes[None])
            out.append(emb[0])
    return np.asarray(out, np.float32)


def _head_context(v: VideoFile, frame: int, spec: EventSpec) -> np.ndarray:
    """The `length` + 1 frames the head reads to score `frame`, or the nearest frame it can score."""
    frame = max(frame, spec.before)
    start = frame - spec.before - 1  # the frame before the first read: each frame's code takes its change
    # past the end the decoder gives fewer frames: the context moves back until the head has all it reads
    for _ in range(8):
        got = [img for _, img in v.frames(start=max(start, 0) / spec.fps, end=(frame + spec.after + 0.5) / spec.fps)]
        if start < 0:  # frame 0 is read against itself, as at a run's start
            got = got[:1] + got
        missing = spec.length + 1 - len(got)
        if missing <= 0 or not got:
            break
        frame, start = frame - missing, start - missing
        if frame < spec.before:
            raise EdgeavError(f"{v.path} is too short for the event head's context", "judge a longer video")
    if len(got) < spec.length + 1:
        raise EdgeavError(f"no frames near {frame / spec.fps:.2f}s in {v.path}", "judge a moment inside the video")
    return np.stack(got)


def record_run_verdicts(
    run_jsonl: str, source: str, model: str, store: str, accept: list[str], reject: list[str], backend: str = "auto"
) -> list[Verdict]:
    """`edgeav feedback`: the verdicts on a run's windows, embedded by `model`, appended to `store`."""
    from edgeav.backends import load_backend

    judged = verdicts_from_run(run_jsonl, parse_marks(accept, "accept") + parse_marks(reject, "reject"))
    if not judged:
        raise EdgeavError(
            f"no verdicts given for {run_jsonl}",
            'pass --accept T / --reject T, or add "verdict": "accept" to lines of the JSONL',
        )
    be = load_backend(model, backend)
    embs = embed_moments(be, source, [t for t, _, _ in judged])
    verdicts = [Verdict(str(source), t, s, y, e.tolist(), be.model_id) for (t, s, y), e in zip(judged, embs)]
    FeedbackStore(store).append(verdicts)
    return verdicts
