"""The run loop: every frame through the event head (a model that has one: an event line at each detected onset),
and every hop the latest visual window → embedding → top-k sounds, with per-stage latency.

A window starting at s recommends a sound that starts at s + pre_roll; its visual input is the frames on screen
at s + frame_offsets. An event recommends a sound that starts on its own frame. Frames arrive from any
FrameSource; a small ring buffer assembles the window stacks (edgeav.steps does the rest).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeav.defaults import DEFAULT_MODEL
from edgeav.errors import EdgeavError
from edgeav.frontends import WindowSpec
from edgeav.prior import prior_bias
from edgeav.steps import EventStep, Window, WindowStep

if TYPE_CHECKING:
    from collections.abc import Callable

    from edgeav.backends.base import Backend
    from edgeav.bank import SoundBank
    from edgeav.events import Event, EventDetector
    from edgeav.foley import ChangeGate
    from edgeav.io.sources import FrameSource
    from edgeav.models.card import ModelCard

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
    """Write one JSON object per window ("type": "window") and per detected event ("type": "event") here."""
    events_only: bool = False
    """Only events: no window is embedded, no window line written (needs a model with an event head)."""
    onset_threshold: float | None = None
    """Event head: the onset logit an event needs (default: the model's, calibrated on val; lower finds more)."""
    save: str | None = None
    """Write the video with the recommended effects mixed in (at the detected events, with an event head)."""
    cues: str | None = None
    """Write the placed effects as a cue sheet for your editor; the format follows the extension: .otio, .edl,
    .xml (Final Cut 7 / Premiere / Resolve), .fcpxml, .aaf, .csv, .txt (Audacity labels), .rpp (Reaper)."""
    rules: str | None = None
    """TOML house rules: deny_sounds, deny_categories, allow_categories, a boost table, min_repeat_s."""
    prior_weight: float | None = None
    """Weight of the footage prior an adapted model carries (how often each sound starts in the footage it was
    adapted on) in the ranking; default: the model's own; 0 = off."""
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
    """CPU threads for the model; default: all cores but one, which decodes the source."""
    deblock: bool = False
    """Decode a file with the codec's deblocking filter, as the models were trained. Off, it is skipped (H.264,
    H.265; other codecs decode as they are): a sixth less decoding time for H.264, and the same events and
    suggestions within noise (docs/research.md)."""
    rgb: bool = False
    """Hand a file's frames to the model as RGB, as the models were trained, even where its event head reads the
    decoder's YUV 4:2:0 planes (the default then: the scaler's RGB conversion skipped, the same events within noise;
    docs/research.md)."""
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
    events: int = 0
    frames: int = 0
    seconds: float = 0.0
    event_ms: list = field(default_factory=list)  # event head time per frame
    event_delay_ms: list = field(default_factory=list)  # from an event's frame arriving to its line
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
            "frames": self.frames,
            "events": self.events,
            "event_ms_per_frame": {"p50": _pct(self.event_ms, 50), "p95": _pct(self.event_ms, 95)},
            "event_delay_ms": {"p50": _pct(self.event_delay_ms, 50), "max": max(self.event_delay_ms, default=0.0)},
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


def _grid_fps(hop: float, offsets: tuple[float, ...]) -> float | None:
    """The coarsest frame grid (fps) that holds every window's frame times exactly; None = native rate."""
    for fps in (5, 10, 20, 25, 50):
        if all(abs(x * fps - round(x * fps)) < 1e-6 for x in (hop, *offsets)):
            return float(fps)
    return None


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
    detector: EventDetector | None = None  # the event head's onset picker; None: windows only
    prior: np.ndarray | None = None  # the footage prior's score bias per bank entry (edgeav.prior); None: off

    def close(self) -> None:
        for part in (self.viewer, self.explainer):
            if part is not None:
                part.close()


def model_threads(cfg: RunConfig) -> int:
    """The model's CPU threads: --threads, else all cores but one (which decodes)."""
    return cfg.threads or max(1, (os.cpu_count() or 2) - 1)


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
    threads = model_threads(cfg)
    backend = load_backend(cfg.model, cfg.backend, cfg.precision, threads, exact_qdq=cfg.exact_qdq())
    bank = default_bank(backend) if cfg.bank is None else SoundBank.load(cfg.bank)
    if bank.embeddings.shape[1] != backend.cfg.embed_dim:
        raise EdgeavError(
            f"bank {cfg.bank} has {bank.embeddings.shape[1]}-d embeddings, model {cfg.model} makes "
            f"{backend.cfg.embed_dim}-d",
            "re-index the sounds with this model (edgeav index)",
        )
    parts = RunParts(backend, bank)
    card = backend.card
    weight = card.prior_weight if cfg.prior_weight is None else cfg.prior_weight
    if weight < 0:
        raise EdgeavError(f"--prior-weight must be ≥ 0 (got {weight})", "e.g. --prior-weight 0 to switch it off")
    parts.prior = prior_bias(card.footage_starts, bank.ids, weight)
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
    parts.detector = event_detector(cfg, backend)
    if parts.detector is None:  # with an event head, effects are placed at the events
        parts.threshold, parts.change_gate = foley_gates(cfg, backend.card)
    return parts


EVENT_BATCH = 64  # frames per event-head call on a file read as fast as possible (2.56 s at 25 fps; 0.89× the time of
# runs of 16 end to end: the per-call work around the convs is paid a quarter as often)
WINDOW_BATCH = 8  # windows embedded per call on a file read as fast as possible: a window encoder runs 2–4× the
# windows per second at batch 8 as one at a time (benchmarks/results/latency.md); 4 s at a 0.5 s hop
ONSET_GAP = 2  # frames: an onset is the highest score within ±2 frames (80 ms at 25 fps, the scoring tolerance)


def event_detector(cfg: RunConfig, backend: Backend) -> EventDetector | None:
    """The onset picker over the backend's event head, or None for a model without one (an error if asked for)."""
    from edgeav.events import EventDetector

    spec = backend.event_spec
    if spec is None:
        if cfg.events_only or cfg.onset_threshold is not None:
            raise EdgeavError(
                f"model {cfg.model} ({backend.name}) has no event head",
                "use the default model with the torch backend, or train one: edgeav train events",
            )
        return None
    threshold = cfg.onset_threshold if cfg.onset_threshold is not None else backend.card.onset_threshold
    if threshold is None:
        raise EdgeavError(
            f"model {cfg.model} has an event head but no calibrated onset threshold", "pass --onset-threshold"
        )
    return EventDetector(spec, threshold, ONSET_GAP, backend.encode_event_frames, backend.score_events)


def open_display(cfg: RunConfig, parts: RunParts) -> None:
    """The live viewer and the explanation writer, opened last: only once the source has opened."""
    if cfg.show:
        from edgeav.display import Viewer

        parts.viewer = Viewer()
    if cfg.explain:
        from edgeav.explain import Explainer

        parts.explainer = Explainer(cfg.explain, parts.backend, parts.bank)


def _say(rec: dict) -> str:
    head = f"[{rec['t']:8.2f}s] " + (f"event {rec['confidence']:.2f}  " if rec.get("type") == "event" else "")
    return head + "  ".join(f"{r['sound']} ({r['category']}) {r['score']:.2f}" for r in rec["recommendations"][:3])


def reads_yuv420(cfg: RunConfig, parts: RunParts) -> bool:
    """Whether the run can take a file's frames as the decoder's YUV 4:2:0 planes (the scaler's RGB conversion
    skipped: the decoder process's largest cost after decoding, docs/results.md#events): when the event head reads
    them (its first conv folds the conversion in) and names the windows, no frame is shown or drawn, and --rgb is
    not given."""
    head_reads = parts.backend.reads_yuv420 and parts.detector is not None
    return head_reads and not (cfg.rgb or cfg.show or cfg.explain)


def open_run_source(cfg: RunConfig, parts: RunParts, fps: float) -> FrameSource:
    """cfg.source at `fps` on the cores the model leaves, then the viewer and explainer (what opened is closed
    again when one of them cannot open)."""
    from edgeav.io import open_source

    # the decoder takes the cores the model leaves: with frame threads of its own it would contend with the model
    # for them (2 cores, a 60 s clip, median of 7: 0.50 s with them, 0.46 s without)
    decode_threads = max(1, (os.cpu_count() or 2) - model_threads(cfg))
    size, yuv420 = parts.backend.cfg.frame_size, reads_yuv420(cfg, parts)
    src = open_source(cfg.source, fps, size, cfg.realtime, decode_threads, cfg.deblock, yuv420)
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
    return src


def run(
    cfg: RunConfig,
    on_window: Callable[[dict], None] | None = None,
    on_ready: Callable[[Backend, SoundBank], None] | None = None,
) -> RunResult:
    """Run the loop over cfg.source (None: the bundled clip). `on_window(record)` is called with every window and
    event record; `on_ready(backend, bank)` once everything opened without error."""
    from edgeav.defaults import DEFAULT_CLIP
    from edgeav.heap import keep_freed_memory
    from edgeav.io.sources import warm_up_decoder

    keep_freed_memory()  # the loop's per-call tensors reuse the heap instead of page-faulting in on every call
    if cfg.source is None:
        cfg = dataclasses.replace(cfg, source=str(DEFAULT_CLIP))

    warm_up_decoder(cfg.source, cfg.realtime)  # its interpreter starts while the model loads
    parts = open_parts(cfg)
    offsets = parts.backend.cfg.frame_offsets
    fps = parts.detector.spec.fps if parts.detector is not None else _grid_fps(cfg.hop, offsets) or 25.0
    src = open_run_source(cfg, parts, fps)
    asm = None if cfg.events_only else WindowAssembler(offsets, cfg.hop)
    if on_ready:
        on_ready(parts.backend, parts.bank)
    res = RunResult()
    out = open(cfg.jsonl, "w", buffering=1) if cfg.jsonl else None
    step, event_step = WindowStep(cfg, parts, res, out), EventStep(cfg, parts, res, out)

    def emit(rec: dict) -> None:
        if on_window:
            on_window(rec)
        elif not cfg.quiet:
            print(_say(rec), flush=True)

    def emit_all(recs: list[dict]) -> None:
        for rec in recs:
            emit(rec)

    t_start = time.perf_counter()
    try:
        _frame_loop(
            cfg, src, parts.detector, asm, res, lambda ws: emit_all(step.many(ws)), lambda ev: emit(event_step(ev))
        )
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
    write_run_outputs(cfg, res, parts.bank)
    return res


def _frame_loop(
    cfg: RunConfig,
    src: FrameSource,
    detector: EventDetector | None,
    asm: WindowAssembler | None,
    res: RunResult,
    on_windows: Callable[[list[Window]], None],
    on_event: Callable[[Event], None],
) -> None:
    """Every frame of `src` to the event detector and the window assembler: `on_windows([Window, ...])` per run of
    windows, `on_event(event)` per onset; --max-seconds ends it (`res.ended_by`). With an event head, a window is
    handed on once the head has scored the frame where its sound would start (the head names it). What is pending
    when the loop ends, Ctrl-C included, is still handed on."""
    # live, paced or shown, every frame and window is handled as it comes (the lowest delay); a file read as fast as
    # possible is handled in runs of frames and of windows, the same events and windows in fewer, larger calls
    one_by_one = src.live or cfg.realtime or cfg.show
    batch, window_batch = (1, 1) if one_by_one else (EVENT_BATCH, WINDOW_BATCH)
    pre_roll = WindowSpec().pre_roll_s
    pending: list = []
    windows: list[Window] = []

    def detect(items: list) -> None:
        run_, items[:] = items[:], []  # taken first: a call that fails is not made again on the way out
        if not run_ or detector is None:
            return
        t0 = time.perf_counter()
        found = detector.push_many(run_)
        res.event_ms += [(time.perf_counter() - t0) * 1e3 / len(run_)] * len(run_)
        for ev in found:
            on_event(ev)

    def embed(every: bool = False) -> None:
        """Hand on the leading windows that are ready (all of them with `every`): the window encoder's once there
        are a run of them; the head's at once, naming costs nothing and the head keeps its frames for NAMED_S only
        (a run of 8 windows at a long --hop would outlast them)."""
        ready = len(windows)
        if detector is not None and not every:
            until = detector.scored_until + 1e-6
            ready = next((k for k, w in enumerate(windows) if w.t + pre_roll > until), len(windows))
        if ready and (every or detector is not None or ready >= window_batch):
            run_, windows[:ready] = windows[:ready], []
            if detector is not None:
                run_ = [dataclasses.replace(w, named=detector.named_at(w.t + pre_roll)) for w in run_]
            on_windows(run_)

    decode_acc = 0.0
    it = iter(src)
    try:
        while True:
            t0 = time.perf_counter()
            try:
                t, frame = next(it)
            except StopIteration:
                break
            arrived = time.perf_counter()
            decode_acc += arrived - t0
            res.frames += 1
            if detector is not None:
                pending.append((t, frame, arrived))
                if len(pending) >= batch:
                    detect(pending)
            for s, stack in asm.push(t, frame) if asm is not None else ():
                windows.append(Window(s, stack, decode_acc))
                decode_acc = 0.0
            embed()
            if cfg.max_seconds is not None and t >= cfg.max_seconds:
                res.ended_by = "max_seconds"
                break
    finally:
        detect(pending)
        embed(every=True)
    if detector is not None:
        for ev in detector.flush():
            on_event(ev)


def write_run_outputs(cfg: RunConfig, res: RunResult, bank: SoundBank) -> None:
    """--save's video with the effects placed and --cues' cue sheet, once the run has ended."""
    if cfg.save:
        from edgeav.foley import write_foley_video

        write_foley_video(cfg.source, cfg.save, res.placements, bank)
    if cfg.cues:
        from edgeav.cues import Footage, write_cues

        write_cues(res.cues, cfg.cues, Footage.probe(cfg.source))
