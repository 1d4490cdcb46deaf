"""The run loop: every hop, the latest visual window → embedding → top-k sounds, with per-stage latency.

A window starting at s recommends a sound that starts at s + pre_roll; its visual input is the frames on screen
at s + frame_offsets. Frames arrive from any FrameSource; a small ring buffer assembles the stacks.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeav.defaults import DEFAULT_MODEL
from edgeav.errors import EdgeavError
from edgeav.frontends import WindowSpec

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

    from edgeav.backends.base import Backend
    from edgeav.bank import SoundBank
    from edgeav.feedback import FeedbackReranker, FeedbackStore
    from edgeav.foley import ChangeGate
    from edgeav.models.card import ModelCard
    from edgeav.rules import Rules

STAGES = ("decode", "preprocess", "encode", "search", "total")


@dataclass
class RunConfig:
    source: str | None = None
    """Video file, camera index (0), /dev/videoN, rtsp:// or http(s):// URL, file://, v4l2://, csi://. Default: the
    bundled clip."""
    bank: str | None = None
    """Sound bank (.npz from `edgeav index`). Default: the bundled sounds, indexed on first use."""
    model: str = DEFAULT_MODEL
    """Registry name, .safetensors path, or an export (.onnx.json, .trt.json)."""
    backend: str = "auto"
    """auto (from the model file) | torch | onnx | tensorrt. onnx or tensorrt with a registry model exports it on
    first use into the cache folder."""
    precision: str | None = None
    """fp32 | fp16 | int8. Default: the model file's own (fp32 for a PyTorch model)."""
    top_k: int = 5
    """Sounds recommended per window."""
    hop: float = 0.5
    """Seconds between windows."""
    search: str = "auto"
    """Bank search, exact: auto (= numpy, fastest measured on CPU) | numpy | faiss."""
    jsonl: str | None = None
    """Write one JSON object per window here."""
    save: str | None = None
    """Write the video with the recommended effects mixed in."""
    cues: str | None = None
    """Write the placed effects as a cue sheet for your editor; the format follows the extension: .otio, .edl,
    .xml (Final Cut 7 / Premiere / Resolve), .fcpxml, .aaf, .csv, .txt (Audacity labels), .rpp (Reaper)."""
    rules: str | None = None
    """TOML house rules: deny_sounds, deny_categories, allow_categories, a boost table, min_repeat_s."""
    feedback: str | None = None
    """Verdicts file (JSONL): re-ranks suggestions; in --show, a / r accept / reject the top suggestion into it."""
    explain: str | None = None
    """Folder: per window, an image of where the model looked."""
    threshold: float | None = None
    """Auto-foley: minimum top score (default: none when the model has a calibrated foley rate, else its
    calibrated score)."""
    foley_rate: float | None = None
    """Auto-foley: fraction of windows that get an effect, where the picture changes most (default: the model's
    calibrated rate)."""
    realtime: bool = False
    """Pace a file at real time (live sources always are)."""
    show: bool = False
    """Show the frame and its suggestions in a window (q quits; a / r accept / reject with --feedback)."""
    quiet: bool = False
    """No per-window lines, only the summary."""
    threads: int | None = None
    """CPU threads for the model."""
    max_seconds: float | None = None
    """Stop after this much source time."""
    qdq: str = "auto"
    """An ONNX Q/DQ INT8 graph: exact (TensorRT's arithmetic) | fused (ONNX Runtime's int8 kernels; they saturate
    on CPUs without VNNI) | auto (exact for TensorRT's form on the CPU)."""

    def exact_qdq(self) -> bool | None:
        modes = {"auto": None, "exact": True, "fused": False}
        if self.qdq not in modes:
            raise EdgeavError(f"--qdq must be auto, exact or fused, not {self.qdq!r}", "e.g. --qdq exact")
        return modes[self.qdq]


@dataclass
class RunResult:
    windows: int = 0
    seconds: float = 0.0
    latency_ms: dict = field(default_factory=lambda: {s: [] for s in STAGES})
    source_stats: dict = field(default_factory=dict)
    placements: list = field(default_factory=list)  # (t, sound, score) mixed by --save
    cues: list = field(default_factory=list)  # the same placements as edgeav.cues.Cue, for --cues
    ended_by: str = "end of source"

    def summary(self) -> dict:
        lat = {
            s: {"p50": _pct(v, 50), "p95": _pct(v, 95), "max": float(max(v)) if v else 0.0}
            for s, v in self.latency_ms.items()
        }
        return {
            "windows": self.windows,
            "windows_per_s": self.windows / self.seconds if self.seconds else 0.0,
            "latency_ms": lat,
            "source": self.source_stats,
            "ended_by": self.ended_by,
            "foley_placements": len(self.placements),
        }


def _pct(v: list[float], q: float) -> float:
    return float(np.percentile(v, q)) if v else 0.0


class WindowAssembler:
    """Turns a stream of (t, frame) into (window start, frame stack) every `hop` seconds."""

    def __init__(self, offsets: tuple[float, ...], hop: float, keep_s: float = 2.0) -> None:
        self.offsets, self.hop, self.keep_s = offsets, hop, keep_s
        self.buf: deque = deque()
        self.next_s = 0.0

    def push(self, t: float, frame: np.ndarray) -> list[tuple[float, np.ndarray]]:
        self.buf.append((t, frame))
        while self.buf and self.buf[0][0] < t - self.keep_s:
            self.buf.popleft()
        out = []
        if self.next_s < self.buf[0][0] - max(self.offsets):  # a live source skipped ahead: resync, do not catch up
            self.next_s = math.ceil((t - max(self.offsets)) / self.hop) * self.hop
        while t >= self.next_s + max(self.offsets) - 1e-6:
            out.append((self.next_s, np.stack([self._on_screen(self.next_s + o) for o in self.offsets])))
            self.next_s += self.hop
        return out

    def _on_screen(self, t: float) -> np.ndarray:
        best = self.buf[0][1]
        for ft, f in self.buf:
            if ft <= t + 1e-6:
                best = f
            else:
                break
        return best


def record_verdict(
    store: FeedbackStore, cfg: RunConfig, backend: Backend, t: float, sound: str, verdict: str, v: np.ndarray
) -> None:
    """A live verdict (the viewer's a / r keys) on the top suggestion, appended to the feedback store."""
    from edgeav.feedback import Verdict

    if store is None:  # a key pressed in a live session must not end it: say how to keep verdicts, go on
        print("edgeav: verdicts are kept only with --feedback FILE.jsonl; this one was not stored", flush=True)
        return
    store.append([Verdict(cfg.source, round(t, 3), sound, verdict, v.tolist(), backend.model_id)])


def _grid_fps(hop: float, offsets: tuple[float, ...]) -> float | None:
    """The coarsest frame grid (fps) that holds every window's frame times exactly; None = native rate."""
    for fps in (5, 10, 20, 25, 50):
        if all(abs(x * fps - round(x * fps)) < 1e-6 for x in (hop, *offsets)):
            return float(fps)
    return None


def rank_window(
    v: np.ndarray,
    bank: SoundBank,
    k: int,
    search: str,
    rules: Rules | None = None,
    reranker: FeedbackReranker | None = None,
    t: float = 0.0,
) -> list[tuple[int, float]]:
    """[(bank index, score)] best first for one window's embedding `v` (1, D): cosine search, then the users'
    feedback (contextual score moves), then the house rules (filter, boost, no repeats)."""
    if rules is None and reranker is None:
        scores, idx = bank.search(v, k, backend=search)
        return [(int(j), float(sc)) for j, sc in zip(idx[0], scores[0])]
    # feedback and rules may reorder or drop many candidates: rank the whole bank (the top 2000 of huge ones)
    scores, idx = bank.search(v, len(bank) if len(bank) < 100_000 else 2000, backend=search)
    scores, idx = scores[0], idx[0]
    if reranker is not None:
        scores = scores + reranker.adjust(v[0])[idx]
    if rules is not None:
        return rules.rank(scores, idx, bank, t, k)
    order = np.argsort(-scores)[:k]
    return [(int(idx[j]), float(scores[j])) for j in order]


def foley_gates(cfg: RunConfig, card: ModelCard) -> tuple[float | None, ChangeGate | None]:
    """(score threshold or None, ChangeGate or None) for auto-foley placements. A model calibrated with a foley rate
    places effects where the picture changes most, with no score gate unless --threshold is given: on the val split
    its top score separated effect onsets from quiet moments worse than chance."""
    from edgeav.foley import ChangeGate

    rate = cfg.foley_rate if cfg.foley_rate is not None else card.foley_rate
    if rate is not None and not 0 < rate <= 1:
        raise EdgeavError(f"--foley-rate must be in (0, 1], got {rate}", "e.g. --foley-rate 0.25")
    score = cfg.threshold if cfg.threshold is not None or rate is not None else card.foley_threshold
    if (cfg.save or cfg.cues) and score is None and rate is None:
        raise EdgeavError(
            f"model {cfg.model} has no calibrated auto-foley threshold", "pass --threshold or --foley-rate"
        )
    return score, (ChangeGate(rate) if rate is not None else None)


def places_effect(score: float, stack: np.ndarray, threshold: float | None, gate: ChangeGate | None) -> bool:
    """Whether this window's top sound is placed: it passes every gate that is on (none on: never)."""
    if threshold is None and gate is None:
        return False
    changed = gate(stack) if gate is not None else True  # the gate sees every window, to keep its history
    return changed and (threshold is None or score >= threshold)


@dataclass
class RunParts:
    """Everything a run opened before its first frame: the model, the bank and what re-ranks, gates and shows."""

    backend: object
    bank: object
    rules: object = None
    reranker: object = None
    store: object = None  # feedback store that live verdicts are appended to
    threshold: float | None = None
    change_gate: object = None
    viewer: object = None
    explainer: object = None

    def close(self) -> None:
        for part in (self.viewer, self.explainer):
            if part is not None:
                part.close()


def open_parts(cfg: RunConfig) -> RunParts:
    """Load the backend and bank, check they fit, and open rules, feedback, foley gates, viewer and explainer."""
    from edgeav.backends import load_backend
    from edgeav.bank import SoundBank
    from edgeav.defaults import default_bank

    if cfg.hop <= 0 or cfg.top_k < 1:
        raise EdgeavError(f"--hop must be > 0 and --top-k ≥ 1 (got {cfg.hop}, {cfg.top_k})", "fix the option")
    if cfg.cues:
        from edgeav.cues import FORMATS

        if Path(cfg.cues).suffix.lower() not in FORMATS:
            raise EdgeavError(f"--cues {cfg.cues}: unknown cue sheet format", f"end it with {', '.join(FORMATS)}")
    backend = load_backend(cfg.model, cfg.backend, cfg.precision, cfg.threads, exact_qdq=cfg.exact_qdq())
    bank = default_bank(backend) if cfg.bank is None else SoundBank.load(cfg.bank)
    if bank.embeddings.shape[1] != backend.cfg.embed_dim:
        raise EdgeavError(
            f"bank {cfg.bank} has {bank.embeddings.shape[1]}-d embeddings, model {cfg.model} makes "
            f"{backend.cfg.embed_dim}-d",
            "re-index the sounds with this model (edgeav index)",
        )
    parts = RunParts(backend, bank)
    if cfg.rules:
        from edgeav.rules import Rules

        parts.rules = Rules.load(cfg.rules, bank)
    if cfg.feedback:
        from edgeav.feedback import FeedbackReranker, FeedbackStore

        parts.store = FeedbackStore(cfg.feedback)
        parts.reranker = FeedbackReranker(parts.store.load(), bank, backend.model_id)
        if parts.reranker.skipped_other_model and not cfg.quiet:
            print(
                f"edgeav: {parts.reranker.skipped_other_model} verdicts in {cfg.feedback} were made with another "
                f"model and are not used (re-embed them: edgeav adapt ... --feedback {cfg.feedback})",
                flush=True,
            )
    parts.threshold, parts.change_gate = foley_gates(cfg, backend.card)
    return parts


def open_display(cfg: RunConfig, parts: RunParts) -> None:
    """The live viewer and the explanation writer, opened last: only once the source has opened."""
    if cfg.show:
        from edgeav.display import Viewer

        parts.viewer = Viewer()
    if cfg.explain:
        from edgeav.explain import Explainer

        parts.explainer = Explainer(cfg.explain, parts.backend, parts.bank)


class WindowStep:
    """One window through the model, search, feedback and rules: its output record, latency, and what it places."""

    def __init__(self, cfg: RunConfig, parts: RunParts, res: RunResult, out: TextIO | None = None) -> None:
        self.cfg, self.parts, self.res, self.out = cfg, parts, res, out
        self.spec = WindowSpec()
        self.last_placed: dict[str, float] = {}

    def __call__(self, s: float, stack: np.ndarray, decode_s: float) -> dict:
        cfg, parts, bank = self.cfg, self.parts, self.parts.bank
        p0 = time.perf_counter()
        x = parts.backend.preprocess(stack[None])
        p1 = time.perf_counter()
        v = parts.backend.encode_preprocessed(x)
        p2 = time.perf_counter()
        ranked = rank_window(v, bank, cfg.top_k, cfg.search, parts.rules, parts.reranker, s)
        p3 = time.perf_counter()
        recs = [
            {"sound": bank.ids[j], "category": bank.categories[j], "score": round(float(sc), 4)} for j, sc in ranked
        ]
        lat = {
            "decode": decode_s * 1e3,
            "preprocess": (p1 - p0) * 1e3,
            "encode": (p2 - p1) * 1e3,
            "search": (p3 - p2) * 1e3,
        }
        lat["total"] = sum(lat.values())
        for k, val in lat.items():
            self.res.latency_ms[k].append(val)
        rec = {
            "t": round(s, 3),
            "t_end": round(s + self.spec.length_s, 3),
            "recommendations": recs,
            "latency_ms": {k: round(val, 2) for k, val in lat.items()},
        }
        if recs and places_effect(recs[0]["score"], stack, parts.threshold, parts.change_gate):
            placed = self.place(s + self.spec.pre_roll_s, recs)
            if placed is not None:
                rec["placed"] = placed
        if self.out:
            self.out.write(json.dumps(rec) + "\n")
        if parts.explainer is not None:
            parts.explainer.explain(s, stack, recs)
        if parts.viewer is not None:
            action = parts.viewer.show(stack[-1], recs, s)
            if action == "quit":
                raise KeyboardInterrupt  # q pressed: end like Ctrl-C, outputs flushed
            if action in ("accept", "reject") and recs:
                record_verdict(parts.store, cfg, parts.backend, s, recs[0]["sound"], action, v[0])
        self.res.windows += 1
        return rec

    def place(self, t_event: float, recs: list[dict]) -> dict | None:
        """Place the top sound at `t_event` unless it would play over itself; the placement, as the JSONL shows it."""
        from edgeav.cues import Cue

        top = recs[0]
        if t_event - self.last_placed.get(top["sound"], -1e9) < max(self.cfg.hop, 1.0):
            return None
        self.res.placements.append((t_event, top["sound"], top["score"]))
        self.last_placed[top["sound"]] = t_event
        file, duration = self.sound_file(top["sound"])
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

    @functools.cache  # noqa: B019  (one WindowStep per run; a bank's files are few)
    def sound_file(self, sound: str) -> tuple[str, float]:
        """(path, seconds) of a bank sound; ("", 0.5) when its file is not on disk."""
        from edgeav.cues import sound_duration
        from edgeav.foley import _sound_path

        try:
            path = _sound_path(self.parts.bank, sound)
        except EdgeavError:
            return "", 0.5
        return str(path), sound_duration(path)


def run(
    cfg: RunConfig,
    on_window: Callable[[dict], None] | None = None,
    on_ready: Callable[[Backend, SoundBank], None] | None = None,
) -> RunResult:
    """Run the loop over cfg.source (None: the bundled clip). `on_ready(backend, bank)` is called once everything
    opened without error."""
    from edgeav.defaults import DEFAULT_CLIP
    from edgeav.io import open_source

    if cfg.source is None:
        cfg = dataclasses.replace(cfg, source=str(DEFAULT_CLIP))

    parts = open_parts(cfg)
    offsets = parts.backend.cfg.frame_offsets
    src = open_source(cfg.source, _grid_fps(cfg.hop, offsets) or 25.0, parts.backend.cfg.frame_size, cfg.realtime)
    if (cfg.save or cfg.cues) and src.live:
        src.close()
        what = "--save" if cfg.save else "--cues"
        raise EdgeavError(f"{what} works on file sources", "record the stream to a file first, then run on it")
    try:
        open_display(cfg, parts)
    except BaseException:
        src.close()  # a camera or stream opened above is released when the viewer cannot open
        parts.close()
        raise
    asm = WindowAssembler(offsets, cfg.hop)
    if on_ready:
        on_ready(parts.backend, parts.bank)
    res = RunResult()
    out = open(cfg.jsonl, "w", buffering=1) if cfg.jsonl else None
    step = WindowStep(cfg, parts, res, out)
    t_start = time.perf_counter()
    decode_acc = 0.0
    try:
        it = iter(src)
        while True:
            t0 = time.perf_counter()
            try:
                t, frame = next(it)
            except StopIteration:
                break
            decode_acc += time.perf_counter() - t0
            for s, stack in asm.push(t, frame):
                rec = step(s, stack, decode_acc)
                decode_acc = 0.0
                if on_window:
                    on_window(rec)
                elif not cfg.quiet:
                    print(
                        f"[{s:8.2f}s] "
                        + "  ".join(
                            f"{r['sound']} ({r['category']}) {r['score']:.2f}" for r in rec["recommendations"][:3]
                        ),
                        flush=True,
                    )
            if cfg.max_seconds is not None and t >= cfg.max_seconds:
                res.ended_by = "max_seconds"
                break
    except KeyboardInterrupt:
        res.ended_by = "interrupted"  # Ctrl-C: every output below is still flushed and closed
    finally:
        res.seconds = time.perf_counter() - t_start
        reason = getattr(src, "ended_reason", None)
        if reason and res.ended_by == "end of source":
            res.ended_by = reason
        src.close()
        parts.close()
        res.source_stats = dict(src.stats)
        if out:
            out.close()
    if cfg.save:
        from edgeav.foley import write_foley_video

        write_foley_video(cfg.source, cfg.save, res.placements, parts.bank)
    if cfg.cues:
        from edgeav.cues import Footage, write_cues

        write_cues(res.cues, cfg.cues, Footage.probe(cfg.source))
    return res
