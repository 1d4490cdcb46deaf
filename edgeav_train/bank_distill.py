"""Stage 2, label-free: the footage's own soundtrack, matched against the user's sound library by the frozen audio
encoder, teaches the visual side which library sound belongs to each moment.

For every training window, the frozen Ea embeds the soundtrack; its similarities to the library (clean files, the
same bank that will be searched at run time) give a target distribution p = softmax(a·B/τ_t). The visual head learns
q = softmax(v·B/τ_s) with KL(p‖q) (+ optionally InfoNCE to the audio). No event log is read: the supervision is the
unlabeled soundtrack and the user's own library. The visual attention head trains (`train="head"`, over a fixed
trunk), or a small student's whole visual encoder (`train="visual"`: it learns the moment from raw pixels); Ea and
the shared projector stay fixed, so the bank embeddings do not move.

With `targets="fingerprint"` the soundtrack speaks more sharply: the library's own waveforms are found in it by
matched filtering (edgeav_train.fingerprint), and only the windows whose first frame shows a library sound starting
train,
each towards that sound. Still no event log: the same two inputs, for footage that plays the library's files.

    edgeav train stage2 --model runs/.../model.safetensors --sounds ../shared/data/gameplay/sounds -o runs/stage2
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeav.atomic import write_json
from edgeav.embed import embed_mels
from edgeav.errors import EdgeavError
from edgeav.io import audio_files
from edgeav.models import load_model, save_model
from edgeav_train.data import WindowSampler, encode_window_visuals
from edgeav_train.loop import LoopConfig, dist_setup, finish_distributed, fit
from edgeav_train.losses import info_nce, kl_to_targets


@dataclass
class BankDistillConfig:
    model: str
    """Stage-1 model (.safetensors) whose visual side learns."""
    sounds: str
    """The sound library (folder) the visual side learns to point into."""
    out: str = "runs/stage2"
    """Folder for checkpoints, metrics.jsonl and the model."""
    cache: str = ".cache/gameplay"
    """Training footage cache (edgeav train cache)."""
    steps: int = 1000
    """Optimizer steps."""
    batch: int = 256
    """Windows per step and process."""
    lr: float = 1e-3
    """Peak learning rate (cosine decay to 0)."""
    tau_target: float = 0.05
    """Temperature of the soundtrack-match targets p = softmax(a·B/τ)."""
    tau_student: float = 0.05
    """Temperature of the visual side's distribution q = softmax(v·B/τ)."""
    w_nce: float = 0.0
    """Weight of InfoNCE between each window's picture and its own soundtrack (keeps audio-visual correspondence)."""
    temperature: float = 0.07
    """Temperature of the InfoNCE softmax (with --w-nce)."""
    target_center: float = 0.0
    """Subtract this × each library sound's mean similarity over all windows from the target logits, so "hub"
    sounds (long ambiences) that match every mixture stop dominating the targets (0 = off)."""
    target_center_k: int = 0
    """0: each sound's mean similarity over all windows; k: over its k most similar windows (a hub is near many
    windows, a rare effect near few)."""
    onset_quantile: float = 0.0
    """With soundtrack targets: train only on windows whose soundtrack rises (spectral flux) at the picture's moment
    above this quantile of all windows (0 = every window)."""
    targets: str = "soundtrack"
    """soundtrack: every window, towards the frozen audio encoder's match of its soundtrack in the library;
    fingerprint: only the windows whose first frame shows a library file starting in the soundtrack, found by
    matched filtering (footage that plays your library's own files, e.g. your game's); mixed: every window, the
    library file found starting there where one is, else the soundtrack match (what `edgeav adapt` uses when the
    footage plays some of the library)."""
    fingerprint_rate: int = 16000
    """Sample rate of the fingerprint matcher (Hz)."""
    balance: float = 0.0
    """Draw windows ∝ (windows of their target sound)^-balance: 1 = every library sound trains equally often,
    0 = uniform (0.5 lost on val for the shipped student's recipe: research/results/student_soups.md)."""
    train: str = "head"
    """What learns: head (the attention head over a fixed trunk) or visual (a student's whole visual encoder)."""
    tune_levels: int = 0
    """With --train head over a pretrained trunk: its last N tapped levels learn too (1 = Lite0's stride-32
    stage)."""
    seed: int = 0
    """Seed of the initialisation-free parts: the windows drawn."""
    log_every: int = 50
    """Steps between metrics.jsonl records."""
    ckpt_every: int = 100
    """Steps between checkpoints (resume from OUT/checkpoint.pt)."""
    progress: bool = True
    """Show a progress bar."""
    stop_after: int = 0
    """Stop this invocation after N steps (time-boxed jobs; run again to resume); 0 = run to the end."""
    splits: tuple[str, ...] = ("train",)
    """Cache splits that train."""
    games: tuple[str, ...] = ()
    """Only clips of these games (none = all)."""
    audio_model: str = ""
    """Whose audio encoder makes the targets and the bank; empty = the model's teacher (a distilled student's
    banks are indexed by its teacher), else the model itself."""


_EMBEDDED: dict[tuple, tuple[list[str], np.ndarray]] = {}


def _library_key(model, files: list[Path]) -> tuple:
    """The same weights and the same files (by size and time): the embeddings an earlier call made still hold."""
    import hashlib

    h = hashlib.sha1()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().numpy().tobytes())
    return h.hexdigest(), tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


def library_embeddings(model, folder: str, files_per_batch: int = 256) -> tuple[list[str], np.ndarray]:
    """Each readable library file's pooled embedding, as the bank indexes it; unreadable files are left out (as
    edgeav index skips them). The windows of many files are encoded together (a file at a time, the encoder's
    per-call cost dominates), and kept for the process: adapt's stages embed the same library."""
    files = audio_files(folder)
    key = _library_key(model, files)
    if key not in _EMBEDDED:
        _EMBEDDED.clear()  # one library at a time: a huge one is not held twice
        _EMBEDDED[key] = _embed_library(model, folder, files, files_per_batch)
    ids, embs = _EMBEDDED[key]
    return list(ids), embs.copy()


def _embed_library(model, folder: str, files: list[Path], files_per_batch: int) -> tuple[list[str], np.ndarray]:
    from edgeav.embed import pool, sound_windows
    from edgeav.io.audio import read_audio

    ids, embs = [], []
    for i in range(0, len(files), files_per_batch):
        windows = []
        for p in files[i : i + files_per_batch]:
            try:
                windows.append(sound_windows(read_audio(p, 16000, max_seconds=30.0)))
            except Exception:
                continue
            ids.append(p.relative_to(folder).as_posix())
        if windows:
            e = embed_mels(model, np.concatenate(windows), batch=256)
            ends = np.cumsum([len(w) for w in windows])
            embs += [pool(part) for part in np.split(e, ends[:-1])]
    return ids, np.stack(embs)


@torch.no_grad()
def window_audio_embeddings(model, sampler: WindowSampler) -> tuple[np.ndarray, np.ndarray]:
    """(rows (N, 2) of (clip, start), audio embeddings (N, D)) for every window of the sampler's clips. Kept in the
    cache folder, keyed by the audio side's hash and the clips: every stage-2 run over one cache embeds it once."""
    import hashlib

    from edgeav.atomic import save_npy
    from edgeav.models.store import audio_sha1

    rows = sampler.all_rows()
    if not len(rows):
        raise ValueError("no training windows in the cache")
    key = hashlib.sha1(f"{audio_sha1(model)}{sampler.keys}{sampler.n_starts}".encode()).hexdigest()[:12]
    path = sampler.cache / f"soundtrack-{key}.npy"
    if path.exists():
        return rows, np.load(path)
    embs = []
    for i in range(0, len(rows), 512):
        mel = np.stack([sampler.audio_window(c, k) for c, k in rows[i : i + 512]])
        embs.append(embed_mels(model, mel, batch=512))
    save_npy(path, np.concatenate(embs))
    return rows, np.load(path)


def onset_strength(sampler: WindowSampler, rows: np.ndarray, lead_s: tuple[float, float] = (0.15, 0.3)) -> np.ndarray:
    """(N,) label-free onset strength of each window at its first frame's moment: the largest positive spectral flux
    (log-mel rise summed over bands) in [start + lead_s[0], start + lead_s[1]] — a sound beginning as the picture
    shows it. Window starts are on the frame grid; the first frame sits `frame_offsets[0]` into the window."""
    lo, hi = (int(round(t * sampler.mel_rate)) for t in lead_s)
    out = np.zeros(len(rows), np.float32)
    for c in np.unique(rows[:, 0]):
        mel = np.asarray(sampler.mels[c], np.float32)
        flux = np.concatenate([[0.0], np.maximum(0, np.diff(mel, axis=0)).sum(1)])
        mine = np.flatnonzero(rows[:, 0] == c)
        m0 = np.round(rows[mine, 1] / sampler.fps * sampler.mel_rate).astype(int)
        out[mine] = [flux[a + lo : a + hi + 1].max(initial=0.0) for a in m0]
    return out


def soundtrack_targets(cfg: BankDistillConfig, hearing, sampler: WindowSampler, B: torch.Tensor):
    """(rows, audio embeddings A, targets p): every window's soundtrack embedded by `hearing` and matched against
    the library B, p = softmax((a·B − hub) / τ_t), the hub term only with `target_center`."""
    rows, audio = window_audio_embeddings(hearing, sampler)
    A = torch.from_numpy(audio)
    logits = A @ B.t()
    if cfg.target_center:
        hub = (
            logits.topk(cfg.target_center_k, dim=0).values.mean(0, keepdim=True)
            if cfg.target_center_k
            else logits.mean(0, keepdim=True)
        )
        logits = logits - cfg.target_center * hub
    return rows, A, torch.softmax(logits / cfg.tau_target, dim=1)


def fingerprint_targets(
    cfg: BankDistillConfig, sampler: WindowSampler, ids: list[str], lead_s: float, required: bool = True
) -> tuple[np.ndarray, torch.Tensor]:
    """(rows, p): the windows whose frame at `lead_s` shows a detected library sound starting, p spread evenly over
    the sounds starting there. Detections are made (and kept in the cache) by edgeav_train.fingerprint. No
    detection at all is an error when `required`, else no rows."""
    from edgeav_train.fingerprint import FingerprintConfig, detect_footage, load_detections

    folder = detect_footage(
        cfg.cache, cfg.sounds, FingerprintConfig(sample_rate=cfg.fingerprint_rate), splits=cfg.splits
    )  # resumes: clips already done are skipped
    fp_ids, found = load_detections(folder, sampler.keys)
    col = {s: i for i, s in enumerate(ids)}
    hits: dict[tuple[int, int], list[int]] = {}
    for c, key in enumerate(sampler.keys):
        for t, j, _ in found.get(key, []):
            k = int(round((t - lead_s) * sampler.fps))
            if fp_ids[j] in col and 0 <= k < sampler.n_starts[c]:
                hits.setdefault((c, k), []).append(col[fp_ids[j]])
    if not hits and not required:
        return np.zeros((0, 2), dtype=int), torch.zeros(0, len(ids))
    if not hits:
        raise EdgeavError(
            f"no library sound was found in the footage of {cfg.cache}",
            "fingerprint targets need the library's own files in the footage: use --targets soundtrack",
        )
    rows = np.array(list(hits), dtype=int)
    p = torch.zeros(len(rows), len(ids))
    for i, cols in enumerate(hits.values()):
        p[i, cols] = 1.0
    return rows, p / p.sum(1, keepdim=True)


def balanced_draw(targets: torch.Tensor, balance: float) -> np.ndarray | None:
    """(N,) probability of drawing each window: ∝ Σ_s p(s)·n(s)^-balance, n(s) = the target mass of sound s over
    all windows (its window count, for one-hot targets). None = uniform (balance 0)."""
    if not balance:
        return None
    n = targets.sum(0).clamp_min(1e-6)
    w = (targets * n.pow(-balance)).sum(1).double().numpy()
    return w / w.sum()


class Stage2Task(nn.Module):
    """The learning part of the model (its visual head, or a student's whole visual encoder) against fixed targets:
    KL(p ‖ softmax(v·Bᵀ/τ_s)) over the library B, plus InfoNCE to each window's own soundtrack (`w_nce`)."""

    def __init__(self, model, learner: nn.Module, bank: torch.Tensor, cfg: BankDistillConfig) -> None:
        super().__init__()
        self.model, self.learner, self.cfg = model, learner, cfg
        self.register_buffer("bank", bank)

    def train(self, mode: bool = True):
        """Only the learning part switches mode: a fixed trunk keeps its BatchNorm statistics."""
        self.training = mode
        self.model.eval()
        self.learner.train(mode)
        return self

    def forward(self, feats, p, a=None) -> dict[str, torch.Tensor]:
        v = encode_window_visuals(self.model, feats)  # cached trunk maps, or raw frames through the backbone
        out = kl_to_targets(p, v @ self.bank.t() / self.cfg.tau_student)
        out["loss"] = out["kl"]
        if a is not None:
            out["nce"] = info_nce(v, a, self.cfg.temperature)["nce_v2a"]
            out["loss"] = out["loss"] + self.cfg.w_nce * out["nce"]
        return out


def check_config(cfg: BankDistillConfig) -> None:
    """Option errors, before the library and footage are read."""
    if cfg.targets not in ("soundtrack", "fingerprint", "mixed"):
        raise EdgeavError(
            f"--targets must be soundtrack, fingerprint or mixed, not {cfg.targets!r}",
            "pass --targets soundtrack, fingerprint or mixed",
        )
    if cfg.targets == "fingerprint" and cfg.onset_quantile:
        raise EdgeavError("--onset-quantile goes with --targets soundtrack", "drop it")
    if cfg.train not in ("head", "visual"):
        raise EdgeavError(
            f"--train must be 'head' or 'visual', not {cfg.train!r}", "pass --train head or --train visual"
        )


def learning_part(model, cfg: BankDistillConfig) -> tuple[nn.Module, list]:
    """(the module that learns, its parameters): the visual head, with a pretrained trunk's last `tune_levels`
    levels, or a student's whole visual encoder."""
    frozen = getattr(model.visual.backbone, "frozen", False)
    if cfg.train == "visual" and frozen:
        raise EdgeavError(
            f"{cfg.model} has a frozen pretrained trunk: its whole visual encoder cannot train",
            "use --train head (the attention head over the trunk)",
        )
    if cfg.tune_levels and (not frozen or cfg.train != "head"):
        raise EdgeavError(
            f"--tune-levels needs a pretrained trunk and --train head ({cfg.model})",
            "drop --tune-levels, or start from a lite0 teacher",
        )
    if cfg.tune_levels:
        model.visual.backbone.set_tune_levels(cfg.tune_levels)  # stored in the saved config
        model.cfg.visual_tune_levels = cfg.tune_levels
    learner = model.visual.head if cfg.train == "head" else model.visual
    learner.requires_grad_(True)
    params = list(learner.parameters())
    if cfg.tune_levels:
        params += model.visual.backbone.tuned_parameters()
        for p in params:
            p.requires_grad_(True)
    return learner, params


def training_targets(cfg: BankDistillConfig, model, hearing, sampler: WindowSampler, ids: list[str], B):
    """(rows, targets p, the soundtrack embedding of each row or None, the pool of rows training draws from)."""
    A = None
    if cfg.targets == "fingerprint":
        rows, targets = fingerprint_targets(cfg, sampler, ids, model.cfg.frame_offsets[0])
        if cfg.w_nce:  # the soundtrack's embedding of each of those windows, for the InfoNCE term
            _, audio = window_audio_embeddings(hearing, sampler)
            first = np.concatenate([[0], np.cumsum(sampler.n_starts)[:-1]])  # all_rows is clip-major
            A = torch.from_numpy(audio[first[rows[:, 0]] + rows[:, 1]])
    else:
        rows, A, targets = soundtrack_targets(cfg, hearing, sampler, B)
        A = A if cfg.w_nce else None
        if cfg.targets == "mixed":  # the library files found playing, where they are found
            fp_rows, fp_p = fingerprint_targets(cfg, sampler, ids, model.cfg.frame_offsets[0], required=False)
            first = np.concatenate([[0], np.cumsum(sampler.n_starts)[:-1]])  # all_rows is clip-major
            targets[torch.from_numpy(first[fp_rows[:, 0]] + fp_rows[:, 1])] = fp_p
    pool = np.arange(len(rows))
    if cfg.onset_quantile:
        strength = onset_strength(sampler, rows)
        pool = np.flatnonzero(strength > np.quantile(strength, cfg.onset_quantile))
    return rows, targets, A, pool


def bank_distill(cfg: BankDistillConfig) -> Path:
    """Run stage 2 (resuming from OUT/checkpoint.pt); returns the saved model, or the checkpoint when stopped early
    by `stop_after`."""
    rank, world = dist_setup()
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    check_config(cfg)
    model = load_model(cfg.model)
    model.requires_grad_(False)
    model.eval()
    learner, params = learning_part(model, cfg)

    t0 = time.perf_counter()
    # the audio side that indexes this model's banks (edgeav.bank.bank_encoder): the student's teacher, or itself
    audio_src = cfg.audio_model or model.card.teacher or ""
    hearing = load_model(audio_src).eval() if audio_src else model
    ids, bank = library_embeddings(hearing, cfg.sounds)
    sampler = WindowSampler.for_model(cfg.cache, model, cfg.splits, cfg.games)
    B = torch.from_numpy(bank)
    if rank == 0:  # fingerprints and soundtrack embeddings are found once and kept in the cache
        targets_ = training_targets(cfg, model, hearing, sampler, ids, B)
    if world > 1:
        torch.distributed.barrier()
        targets_ = training_targets(cfg, model, hearing, sampler, ids, B) if rank else targets_
    rows, targets, A, pool = targets_
    draw = balanced_draw(targets[pool], cfg.balance)
    if rank == 0:
        print(
            f"bank-distill: {len(ids)} library sounds, {cfg.targets} targets for {len(rows)} windows in "
            f"{time.perf_counter() - t0:.0f} s; mean target max-prob {targets.max(1).values.mean():.3f}; "
            f"training on {len(pool)}{f', drawn balanced by target sound (^-{cfg.balance})' if cfg.balance else ''}",
            flush=True,
        )

    def next_batch(rng):
        pick = pool[rng.choice(len(pool), min(cfg.batch, len(pool)), replace=False, p=draw)]  # short footage: all
        feats = sampler.visuals(rows[pick])
        return (feats, targets[pick], A[pick] if A is not None else None), len(pick)

    task = Stage2Task(model, learner, B, cfg)
    loop = LoopConfig.of(cfg, warmup=1, weight_decay=1e-4, max_grad_norm=None)
    done = fit(task, params, next_batch, out, loop)
    path = out / "checkpoint.pt"
    if rank == 0 and done:
        card = model.card  # the stage-1 model's: its teacher and hashes still hold
        provenance = {**card.provenance, "bank_distill": asdict(cfg), "stage1": card.provenance}
        path = save_model(model, out / "model", card.replace(provenance=provenance))
        write_json(out / "done.json", {"seconds": round(time.perf_counter() - t0, 1), "windows": int(len(rows))})
    finish_distributed()
    return path if done else out / "checkpoint.pt"


if __name__ == "__main__":
    import sys

    from edgeav_train.loop import cli_config

    print(bank_distill(cli_config(BankDistillConfig, sys.argv[1:])))
