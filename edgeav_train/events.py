"""The event head, label-free: the library's own files found in the soundtrack (edgeav_train.fingerprint) say on
which frame an effect starts and which file it is; the head learns both from the frames around it.

Onset: binary cross-entropy per frame, the fingerprinted start frames positive, their ±1 neighbours left out (a
start found one frame off is not a negative), every other frame negative; half of each batch is start frames.
Sound: the embedding's cosine to the library's bank embeddings (the audio encoder that indexes this model's banks),
cross-entropy towards the fingerprinted file with the log of each file's fingerprinted frequency added to the
logits in training (logit adjustment, Menon et al. 2021), so rare effects are not drowned by frequent ones. The
rest of the model (its window encoder, audio encoder, projector) is fixed: banks stay valid. No event log is read.

    edgeav train events --model student --sounds ../shared/data/gameplay/sounds \\
        --fingerprints .cache/gameplay/fingerprints-9566773310b4 -o runs/events/student
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeav.atomic import write_json
from edgeav.errors import EdgeavError
from edgeav.models import load_model, save_model
from edgeav.models.av import AVModel
from edgeav.models.events import pooled_tensor
from edgeav_train.corpus import CORPUS_ENV
from edgeav_train.loop import LoopConfig, fit


@dataclass
class EventTrainConfig:
    model: str
    """Model that gains the event head (registry name or .safetensors); its other parts stay fixed. A model that
    has one already fine-tunes it (its own widths, dim, context and pool; those below then do not apply) unless
    --fresh."""
    sounds: str
    """The sound library whose files are found in the footage."""
    fresh: bool = False
    """Train a new event head of the geometry below even if the model has one (it is replaced)."""
    out: str = "runs/events"
    """Folder for checkpoints, metrics.jsonl and the model."""
    cache: str = ".cache/gameplay-25"
    """Frame-rate training cache (edgeav train cache --fps 25)."""
    fingerprints: str = ""
    """Where the library's starts in the footage are: a folder of detections (python -m edgeav_train.fingerprint),
    or a cache of the same footage whose detections of this library are reused or found (the 5 fps training
    cache has them from stage 2); empty = found into this cache."""
    splits: tuple[str, ...] = ("train",)
    """Cache splits trained on."""
    leave_out: tuple[str, ...] = ()
    """Clips whose name starts with one of these are not trained on (a game, to measure adapting to it)."""
    widths: tuple[int, ...] = (16, 32, 64)
    """Event head conv widths."""
    dim: int = 64
    """Event head per-frame code width."""
    context: tuple[int, int] = (4, 2)
    """Frames read before and after the candidate frame."""
    pool: int = 1
    """Frames are average-pooled by this first (2: 128×96 → 64×48)."""
    stem: int = 4
    """> 1: the head's first conv is a stem×stem patch conv at that stride, reading every pixel of the pooled frame
    (against 2 × 2 pooling then a 3×3 conv at stride 2, val F1 0.613 alike after one schedule and 0.643 against 0.619
    after the fine-tune; funnyboat's one- or two-pixel cannonballs 0.25 → 0.42); 1: a 3×3 conv at stride 2."""
    steps: int = 2500
    """Optimizer steps."""
    batch: int = 96
    """Frames per step (half of them fingerprinted starts)."""
    lr: float = 2e-3
    """Peak learning rate (cosine decay to 0)."""
    tau: float = 0.07
    """Temperature of the sound logits cos/τ."""
    adjust: float = 1.0
    """Logit adjustment strength: τ_adj · log(file frequency) added to the training logits (0 = plain CE)."""
    w_sound: float = 1.0
    """Weight of the sound loss beside the onset loss."""
    seed: int = 0
    """Seed of initialization and batches."""
    threads: int = 2
    """CPU threads."""
    stop_after: int = 0
    """Stop after this many steps of this invocation (resume later); 0 = run to the end."""
    calibrate: bool = True
    """Calibrate the onset threshold on the corpus's val event logs (model selection only); off, or with no corpus,
    the model keeps the threshold it has (none: run then needs --onset-threshold)."""
    corpus: str = ""
    """The corpus whose val clips calibrate; empty: $EDGEAV_CORPUS."""
    feedback: str = ""
    """Verdicts (edgeav feedback, the review page) on this footage: an accepted sound is a target at its moment, a
    rejected one is pushed away there; empty = none."""
    feedback_repeat: int = 8
    """A verdict the fingerprints do not already say (a sound accepted where it was not found starting, or a
    rejection) is drawn as often as this many fingerprinted starts: a user's word outweighs a match."""
    w_reject: float = 1.0
    """Weight of the push-away loss of rejected sounds."""


class FrameClips:
    """The frame-rate cache's clips (memory-mapped) and, per clip, the fingerprinted start frame → library file."""

    def __init__(
        self, cache: str | Path, splits: tuple[str, ...] = ("train",), leave_out: tuple[str, ...] = ()
    ) -> None:
        cache = Path(cache)
        man_path = cache / "manifest.json"
        if not man_path.exists():
            raise EdgeavError(f"no frame cache at {cache}", "build it: edgeav train cache FOOTAGE --fps 25 -o CACHE")
        man = json.loads(man_path.read_text())
        self.fps = float(man["config"]["fps"])
        self.keys = sorted(
            k for k, e in man["clips"].items() if e["split"] in splits and not any(map(k.startswith, leave_out))
        )
        self.sources = [str(Path(man["clips"][k]["source"]).resolve()) for k in self.keys]
        self.frames = [np.load(cache / "shards" / f"{k}.frames.npy", mmap_mode="r") for k in self.keys]

    def starts(self, folder: Path, bank_ids: list[str]) -> list[dict[int, int]]:
        """Per clip, {frame: bank index} of the fingerprinted starts (the strongest where two share a frame)."""
        from edgeav_train.fingerprint import load_detections

        ids, found = load_detections(folder, self.keys)
        where = {s: j for j, s in enumerate(bank_ids)}
        out = []
        for k in self.keys:
            best: dict[int, tuple[float, int]] = {}
            for t, j, margin in found.get(k, []):
                f = int(round(t * self.fps))
                if ids[j] in where and (f not in best or margin > best[f][0]):
                    best[f] = (margin, where[ids[j]])
            out.append({f: b for f, (_, b) in best.items()})
        return out


def stack(frames: np.ndarray, f: int, before: int, after: int) -> np.ndarray:
    """Frames f − before − 1 … f + after (the one before the first gives its change), clamped at the clip's ends."""
    idx = np.clip(np.arange(f - before - 1, f + after + 1), 0, len(frames) - 1)
    return frames[idx]


@dataclass
class VerdictTargets:
    """The user's verdicts placed on the cache's frames: rows (clip, frame, bank index)."""

    accepted: np.ndarray
    rejected: np.ndarray
    unplaced: int = 0
    """Verdicts on videos not in this footage, on sounds not in the library, or past a clip's end."""

    @staticmethod
    def empty() -> VerdictTargets:
        return VerdictTargets(np.zeros((0, 3), np.int64), np.zeros((0, 3), np.int64))


def verdict_targets(path: str, clips: FrameClips, ids: list[str]) -> VerdictTargets:
    """Each verdict at the frame its sound starts (a verdict's t is its window's start, the sound starts a pre-roll
    later): accepted and rejected rows on this cache's clips."""
    from edgeav.feedback import FeedbackStore
    from edgeav.frontends import WindowSpec

    clip_of = {src: c for c, src in enumerate(clips.sources)}
    where = {s: j for j, s in enumerate(ids)}
    rows: dict[str, list[tuple[int, int, int]]] = {"accept": [], "reject": []}
    unplaced = 0
    for v in FeedbackStore(path).load():
        c = clip_of.get(str(Path(v.source).resolve()))
        f = int(round((v.t + WindowSpec().pre_roll_s) * clips.fps))
        if c is None or v.sound not in where or not 0 <= f < len(clips.frames[c]) or v.verdict not in rows:
            unplaced += 1
            continue
        rows[v.verdict].append((c, f, where[v.sound]))
    as_rows = [np.array(rows[k], np.int64).reshape(-1, 3) for k in ("accept", "reject")]
    return VerdictTargets(*as_rows, unplaced)


def provenance_step(provenance: dict, fresh: bool) -> str:
    """The card's provenance key of this run: `events` for a new head, else the next free `events_finetune`,
    `events_finetune_2`, …: every fine-tune keeps its own record."""
    if fresh or "events" not in provenance:
        return "events"
    names = ("events_finetune", *(f"events_finetune_{i}" for i in range(2, len(provenance) + 2)))
    return next(n for n in names if n not in provenance)


class EventTask(nn.Module):
    """Onset BCE over the drawn frames (weighted: a rejected verdict's frame says nothing about the onset) +
    logit-adjusted sound CE over the start frames + a push-away term, −log(1 − p), of each rejected sound."""

    def __init__(self, head: nn.Module, bank: torch.Tensor, log_prior: torch.Tensor, cfg: EventTrainConfig) -> None:
        super().__init__()
        self.head, self.cfg = head, cfg
        self.register_buffer("bank", bank)
        self.register_buffer("log_prior", log_prior)

    def forward(
        self, x: torch.Tensor, onset: torch.Tensor, sound: torch.Tensor, reject: torch.Tensor, onset_w: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        logit, emb = self.head.from_codes(self.head.encode_pooled(x)[0])  # x pooled by BatchDraw
        bce = nn.functional.binary_cross_entropy_with_logits(logit, onset, reduction="none")
        out = {"onset": (bce * onset_w).sum() / onset_w.sum().clamp_min(1.0)}
        zero = logit.sum() * 0.0
        pos = sound >= 0
        out["sound"] = zero
        if pos.any():
            z = emb[pos] @ self.bank.t() / self.cfg.tau + self.cfg.adjust * self.log_prior
            out["sound"] = nn.functional.cross_entropy(z, sound[pos])
        neg = reject >= 0
        out["reject"] = zero
        if neg.any():
            p = torch.softmax(emb[neg] @ self.bank.t() / self.cfg.tau, dim=1).gather(1, reject[neg, None])[:, 0]
            out["reject"] = -torch.log1p(-p.clamp_max(1 - 1e-6)).mean()
        out["loss"] = out["onset"] + self.cfg.w_sound * out["sound"] + self.cfg.w_reject * out["reject"]
        return out


def with_event_head(model: AVModel, cfg: EventTrainConfig) -> AVModel:
    """`model` with an event head to train: its own (fine-tuned), else (or with `cfg.fresh`) a new one of `cfg`'s
    geometry in a copy whose every other tensor is the model's own; a replaced head's threshold goes with it."""
    if model.cfg.event_widths and not cfg.fresh:
        return model.eval()
    arch = dataclasses.replace(
        model.cfg,
        event_widths=cfg.widths,
        event_dim=cfg.dim,
        event_context=cfg.context,
        event_pool=cfg.pool,
        event_stem=cfg.stem,
    )
    card = model.card.replace(onset_threshold=None) if model.cfg.event_widths else model.card  # the old head's
    out = AVModel(arch, card)
    kept = {k: v for k, v in model.state_dict().items() if not k.startswith("events.")}
    missing, unexpected = out.load_state_dict(kept, strict=False)
    assert not unexpected and all(k.startswith("events.") for k in missing), (missing, unexpected)
    return out.eval()  # fixed parts keep their BatchNorm statistics; only the event head trains


class BatchDraw:
    """Batches of frame stacks: half drawn from the start frames (fingerprinted) and the user's verdicts, the other
    half any frame, never next to a start (their ±1 neighbours are weighted out).

    A verdict that says something the fingerprints do not — a sound accepted where none of it was found starting
    (within a frame), or a sound rejected — is drawn as often as `feedback_repeat` starts; an accepted sound the
    fingerprints found there already is that start, drawn once. Verdicts take start slots, never frame slots: half
    of each batch still teaches what no onset looks like. (Repeating every verdict, and giving rejections a fixed
    eighth of each batch, cost the held-out games' detection: research/results/adapt_verdict_draw.md.)"""

    def __init__(
        self,
        clips: FrameClips,
        starts: list[dict[int, int]],
        cfg: EventTrainConfig,
        verdicts: VerdictTargets | None = None,
        pool: int = 1,
    ) -> None:
        verdicts = verdicts or VerdictTargets.empty()
        self.clips, self.cfg, self.pool = clips, cfg, pool
        self.before, self.after = cfg.context
        self.found = np.array([(c, f, b) for c, s in enumerate(starts) for f, b in s.items()], dtype=np.int64)
        self.found = self.found.reshape(-1, 3)
        news = [not any(starts[c].get(f + d) == b for d in (-1, 0, 1)) for c, f, b in verdicts.accepted]
        self.confirmed = int(len(news) - sum(news))  # accepted where the same sound was fingerprinted starting
        added = verdicts.accepted[np.array(news, bool).reshape(-1)]
        self.pos = np.concatenate([self.found, np.repeat(added, cfg.feedback_repeat, axis=0)])
        rejected = np.repeat(verdicts.rejected, cfg.feedback_repeat, axis=0)
        starting = np.insert(self.pos, 3, -1, axis=1)  # rows (clip, frame, sound starting, sound pushed away)
        self.drawn = np.concatenate([starting, np.insert(rejected, 2, -1, axis=1)])
        self.near = [set(s) | {f + d for f in s for d in (-1, 1)} for s in starts]
        for c, f, _ in verdicts.accepted:
            self.near[c] |= {f - 1, f, f + 1}
        if not len(self.pos):
            raise EdgeavError("no library sound was found in the footage", "check --sounds and --fingerprints")

    def sound_counts(self, n: int) -> np.ndarray:
        """How often each of the `n` library sounds is a start target in the draw (fingerprinted + accepted)."""
        return np.bincount(self.pos[:, 2], minlength=n)

    def __call__(self, rng: np.random.Generator):
        rows = [tuple(r) for r in self.drawn[rng.integers(0, len(self.drawn), self.cfg.batch // 2)]]
        while len(rows) < self.cfg.batch:
            c = int(rng.integers(len(self.clips.frames)))
            f = int(rng.integers(0, len(self.clips.frames[c])))
            if f not in self.near[c]:
                rows.append((c, f, -1, -1))
        stacks = np.stack([stack(self.clips.frames[c], f, self.before, self.after) for c, f, _, _ in rows])
        x = pooled_tensor(stacks, self.pool)  # the head's pooling, on the integers: the head is fed pooled frames
        onset = torch.tensor([float(b >= 0) for _, _, b, _ in rows])
        sound = torch.tensor([b for _, _, b, _ in rows], dtype=torch.long)
        reject = torch.tensor([r for _, _, _, r in rows], dtype=torch.long)
        onset_w = (reject < 0).float()  # a rejected sound's frame: whether an effect starts there is not known
        return (x, onset, sound, reject, onset_w), len(rows)


def fingerprinted_starts(cfg: EventTrainConfig, clips: FrameClips, ids: list[str]) -> list[dict[int, int]]:
    """The training targets: per clip, the frames where the library's own files start in the soundtrack."""
    from edgeav_train.fingerprint import detect_footage

    folder = Path(cfg.fingerprints or cfg.cache)
    if not folder.is_dir():
        raise EdgeavError(f"no fingerprint folder {folder}", "run python -m edgeav_train.fingerprint or drop it")
    if (folder / "manifest.json").exists():  # a cache: its detections of this library, found where missing
        folder = detect_footage(folder, cfg.sounds, splits=cfg.splits)
    return clips.starts(folder, ids)


Targets = Callable[[EventTrainConfig, FrameClips, list[str]], list[dict[int, int]]]


def train_events(cfg: EventTrainConfig, targets: Targets = fingerprinted_starts) -> Path:
    """Train the event head (resuming from OUT/checkpoint.pt); returns the saved model, or the checkpoint when
    stopped early. `targets` gives the start frames and files (research swaps in the event logs, as a ceiling)."""
    from edgeav_train.bank_distill import library_embeddings

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = with_event_head(load_model(cfg.model), cfg)
    model.requires_grad_(False)
    model.events.requires_grad_(True)
    hearing = load_model(model.card.teacher).eval() if model.card.teacher else model
    ids, bank = library_embeddings(hearing, cfg.sounds)
    clips = FrameClips(cfg.cache, cfg.splits, cfg.leave_out)
    verdicts = verdict_targets(cfg.feedback, clips, ids) if cfg.feedback else VerdictTargets.empty()
    draw = BatchDraw(clips, targets(cfg, clips, ids), cfg, verdicts, model.events.pool_size)
    counts = draw.sound_counts(len(ids)) + 1.0  # the prior the sound loss is trained under, verdicts included
    log_prior = torch.from_numpy(np.log(counts / counts.sum())).float()
    print(
        f"events: {len(clips.keys)} clips, {len(draw.found)} starts of {int((counts > 1).sum())} of "
        f"{len(ids)} library files ({time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    if cfg.feedback:
        print(
            f"events: verdicts from {cfg.feedback}: {len(verdicts.accepted)} accepted ({draw.confirmed} where the "
            f"fingerprints found that sound already), {len(verdicts.rejected)} rejected used; {verdicts.unplaced} not "
            "on this footage or library",
            flush=True,
        )
    task = EventTask(model.events, torch.from_numpy(bank), log_prior, cfg)
    done = fit(task, list(model.events.parameters()), draw, out, LoopConfig.of(cfg, warmup=100))
    if not done:
        return out / "checkpoint.pt"
    step = provenance_step(model.card.provenance, cfg.fresh)
    card = model.card.replace(provenance={**model.card.provenance, step: asdict(cfg)})
    done_info = {
        "seconds": round(time.perf_counter() - t0, 1),
        "starts": int(len(draw.found)),
        "verdicts": {
            "accepted": len(verdicts.accepted),
            "confirmed": draw.confirmed,
            "rejected": len(verdicts.rejected),
        },
    }
    if cfg.calibrate and (cfg.corpus or os.environ.get(CORPUS_ENV)):
        from edgeav_train.event_eval import calibrate_onsets

        threshold, val = calibrate_onsets(model, cfg.cache, cfg.corpus or None)
        card = card.replace(onset_threshold=round(threshold, 3))
        done_info["val_detection"] = val
        print(f"events: onset threshold {threshold:.2f} (val F1 {val['f1']:.3f})", flush=True)
    elif card.onset_threshold is None:
        print("events: no corpus to calibrate the onset threshold; pass --onset-threshold to edgeav run", flush=True)
    path = save_model(model, out / "model", card)
    write_json(out / "done.json", done_info)
    return path
