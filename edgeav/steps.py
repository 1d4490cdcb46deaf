"""What the run loop does with each window and each detected event: the model's embedding through the bank
search, the users' feedback and the house rules, into an output record, and the effects auto-foley places."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edgeav.errors import EdgeavError
from edgeav.frontends import WindowSpec
from edgeav.yuv import yuv420_to_rgb

if TYPE_CHECKING:
    from typing import TextIO

    from edgeav.backends.base import Backend
    from edgeav.bank import SoundBank
    from edgeav.events import Event, ScoredFrame
    from edgeav.feedback import FeedbackReranker, FeedbackStore
    from edgeav.foley import ChangeGate
    from edgeav.pipeline import RunConfig, RunParts, RunResult
    from edgeav.rules import Rules


def record_verdict(
    store: FeedbackStore, cfg: RunConfig, backend: Backend, t: float, sound: str, verdict: str, v: np.ndarray
) -> None:
    """A live verdict (the viewer's a / r keys) on the top suggestion, appended to the feedback store."""
    from edgeav.feedback import Verdict

    if store is None:  # a key pressed in a live session must not end it: say how to keep verdicts, go on
        print("edgeav: verdicts are kept only with --feedback FILE.jsonl; this one was not stored", flush=True)
        return
    store.append([Verdict(cfg.source, round(t, 3), sound, verdict, v.tolist(), backend.model_id)])


def rank_window(
    v: np.ndarray,
    bank: SoundBank,
    k: int,
    search: str,
    rules: Rules | None = None,
    reranker: FeedbackReranker | None = None,
    t: float = 0.0,
    prior: np.ndarray | None = None,
) -> list[tuple[int, float]]:
    """[(bank index, score)] best first for one window's embedding `v` (1, D): cosine search, then the footage
    prior (edgeav.prior: a bias per bank entry), the users' feedback (contextual score moves), then the house rules
    (filter, boost, no repeats)."""
    if rules is None and reranker is None and prior is None:
        scores, idx = bank.search(v, k, backend=search)
        return [(int(j), float(sc)) for j, sc in zip(idx[0], scores[0])]
    # the prior, feedback and rules may reorder or drop many candidates: rank the whole bank (the top 2000 of huge
    # ones)
    scores, idx = bank.search(v, len(bank) if len(bank) < 100_000 else 2000, backend=search)
    scores, idx = scores[0], idx[0]
    if prior is not None:
        scores = scores + prior[idx]
    if reranker is not None:
        scores = scores + reranker.adjust(v[0])[idx]
    if rules is not None:
        return rules.rank(scores, idx, bank, t, k)
    order = np.argsort(-scores)[:k]
    return [(int(idx[j]), float(scores[j])) for j in order]


def recommendations(ranked: list[tuple[int, float]], bank: SoundBank) -> list[dict]:
    return [{"sound": bank.ids[j], "category": bank.categories[j], "score": round(float(sc), 4)} for j, sc in ranked]


def places_effect(score: float, stack: np.ndarray, threshold: float | None, gate: ChangeGate | None) -> bool:
    """Whether this window's top sound is placed: it passes every gate that is on (none on: never)."""
    if threshold is None and gate is None:
        return False
    changed = gate(stack) if gate is not None else True  # the gate sees every window, to keep its history
    return changed and (threshold is None or score >= threshold)


class Placer:
    """Auto-foley placements (for --save and --cues): the top sound at a moment, unless the same sound was placed
    less than `min_gap_s` before (or, with min_gap_s None, is still playing there): no sound stacks on itself."""

    def __init__(self, bank: SoundBank, res: RunResult, min_gap_s: float | None) -> None:
        self.bank, self.res, self.min_gap_s = bank, res, min_gap_s
        self.last_placed: dict[str, float] = {}

    def place(self, t_event: float, recs: list[dict]) -> dict | None:
        """The placement as the JSONL shows it, or None when it would stack on itself."""
        from edgeav.cues import Cue

        top = recs[0]
        file, duration = self.sound_file(top["sound"])
        gap = self.min_gap_s if self.min_gap_s is not None else duration
        if t_event - self.last_placed.get(top["sound"], -1e9) < gap:
            return None
        self.res.placements.append((t_event, top["sound"], top["score"]))
        self.last_placed[top["sound"]] = t_event
        alts = tuple(r["sound"] for r in recs[1:5])
        self.res.cues.append(Cue(round(t_event, 3), top["sound"], file, top["category"], top["score"], duration, alts))
        return {
            "t": round(t_event, 3),
            "sound": top["sound"],
            "file": file,
            "category": top["category"],
            "score": top["score"],
            "duration": round(duration, 3),
        }

    @functools.cache  # noqa: B019  (one Placer per run; a bank's files are few)
    def sound_file(self, sound: str) -> tuple[str, float]:
        """(path, seconds) of a bank sound; ("", 0.5) when its file is not on disk."""
        from edgeav.cues import sound_duration
        from edgeav.foley import _sound_path

        try:
            path = _sound_path(self.bank, sound)
        except EdgeavError:
            return "", 0.5
        return str(path), sound_duration(path)


@dataclass
class Window:
    """A window of the run: its start, its frame stack, the decode seconds since the window before, and — for a
    model with an event head — the head's scored frame where its sound would start, which names it."""

    t: float
    stack: np.ndarray
    decode_s: float
    named: ScoredFrame | None = None


class WindowStep:
    """Windows through the model, search, feedback and rules: their output records, latency, and what they place."""

    def __init__(self, cfg: RunConfig, parts: RunParts, res: RunResult, out: TextIO | None = None) -> None:
        self.cfg, self.parts, self.res, self.out = cfg, parts, res, out
        self.spec = WindowSpec()
        self.placer = Placer(parts.bank, res, min_gap_s=max(cfg.hop, 1.0))

    def many(self, windows: list[Window]) -> list[dict]:
        """Windows embedded in one call — the window encoder's, or for windows the event head named, its embeddings
        (no encoder pass: preprocess and encode take no time) — then each searched, recorded and placed in order;
        each window's preprocess and encode time is its share of the call's."""
        if all(w.named is not None for w in windows):
            v = np.concatenate([w.named.embedding for w in windows])
            share = {"preprocess": 0.0, "encode": 0.0}
        else:
            backend = self.parts.backend
            p0 = time.perf_counter()
            # frames decoded as YUV planes (a head that reads them names nearly every window) are made RGB here
            stacks = [w.stack if w.stack.ndim == 4 else yuv420_to_rgb(w.stack) for w in windows]
            x = backend.preprocess(np.stack(stacks))
            p1 = time.perf_counter()
            v = backend.encode_preprocessed(x)
            p2 = time.perf_counter()
            share = {"preprocess": (p1 - p0) * 1e3 / len(windows), "encode": (p2 - p1) * 1e3 / len(windows)}
        return [self._finish(w, v[i : i + 1], share) for i, w in enumerate(windows)]

    def _finish(self, w: Window, v: np.ndarray, share: dict) -> dict:
        cfg, parts, bank = self.cfg, self.parts, self.parts.bank
        s, stack = w.t, w.stack
        p2 = time.perf_counter()
        ranked = rank_window(v, bank, cfg.top_k, cfg.search, parts.rules, parts.reranker, s, parts.prior)
        p3 = time.perf_counter()
        recs = recommendations(ranked, bank)
        lat = {"decode": w.decode_s * 1e3, **share, "search": (p3 - p2) * 1e3}
        lat["total"] = sum(lat.values())
        for k, val in lat.items():
            self.res.latency_ms[k].append(val)
        rec = {
            "type": "window",
            "t": round(s, 3),
            "t_end": round(s + self.spec.length_s, 3),
            "recommendations": recs,
            "latency_ms": {k: round(val, 2) for k, val in lat.items()},
        }
        if recs and places_effect(recs[0]["score"], stack, parts.threshold, parts.change_gate):
            placed = self.placer.place(s + self.spec.pre_roll_s, recs)
            if placed is not None:
                rec["placed"] = placed
        if self.out:
            self.out.write(json.dumps(rec) + "\n")
        if parts.explainer is not None and w.named is not None:
            parts.explainer.explain_named(s, w.named.frame, w.named.attention, recs)
        elif parts.explainer is not None:
            parts.explainer.explain(s, stack, recs)
        if parts.viewer is not None:
            action = parts.viewer.show(stack[-1], recs, s)
            if action == "quit":
                raise KeyboardInterrupt  # q pressed: end like Ctrl-C, outputs flushed
            if action in ("accept", "reject") and recs:
                record_verdict(parts.store, cfg, parts.backend, s, recs[0]["sound"], action, v[0])
        self.res.windows += 1
        return rec


class EventStep:
    """One detected event through search, feedback and rules: its output record, and the effect auto-foley places
    there (every detected event is confident: it cleared the calibrated onset threshold)."""

    def __init__(self, cfg: RunConfig, parts: RunParts, res: RunResult, out: TextIO | None = None) -> None:
        self.cfg, self.parts, self.res, self.out = cfg, parts, res, out
        self.placer = Placer(parts.bank, res, min_gap_s=None)

    def __call__(self, ev: Event) -> dict:
        cfg, parts = self.cfg, self.parts
        p0 = time.perf_counter()
        ranked = rank_window(
            ev.embedding, parts.bank, cfg.top_k, cfg.search, parts.rules, parts.reranker, ev.t, parts.prior
        )
        recs = recommendations(ranked, parts.bank)
        rec = {
            "type": "event",
            "t": round(ev.t, 3),
            "confidence": round(ev.confidence, 4),
            "recommendations": recs,
            "latency_ms": {"search": round((time.perf_counter() - p0) * 1e3, 2)},
        }
        if ev.arrived is not None:  # from the frame's arrival to this line: what a live viewer waits
            rec["delay_ms"] = round((time.perf_counter() - ev.arrived) * 1e3, 1)
            self.res.event_delay_ms.append(rec["delay_ms"])
        if recs:
            placed = self.placer.place(ev.t, recs)
            if placed is not None:
                rec["placed"] = placed
        if self.out:
            self.out.write(json.dumps(rec) + "\n")
        if parts.explainer is not None:
            parts.explainer.explain_event(ev, recs)
        if parts.viewer is not None and ev.frame is not None:
            self.show(ev, recs)
        self.res.events += 1
        return rec

    def show(self, ev: Event, recs: list[dict]) -> None:
        """The event's frame and sounds in the viewer; a / r judge its top sound, kept (as every verdict) at the
        window whose sound starts at the event, with the event's embedding (what its ranking queried)."""
        from edgeav.feedback import window_start

        action = self.parts.viewer.show(ev.frame, recs, ev.t, f"event {ev.confidence:.2f}")
        if action == "quit":
            raise KeyboardInterrupt  # q pressed: end like Ctrl-C, outputs flushed
        if action in ("accept", "reject") and recs:
            t = window_start({"type": "event", "t": ev.t})
            record_verdict(self.parts.store, self.cfg, self.parts.backend, t, recs[0]["sound"], action, ev.embedding[0])
