"""Stage 2, label-free: the footage's own soundtrack, matched against the user's sound library by the frozen audio
encoder, teaches the visual side which library sound belongs to each moment.

For every training window, the frozen Ea embeds the soundtrack; its similarities to the library (clean files, the
same bank that will be searched at run time) give a target distribution p = softmax(a·B/τ_t). The visual head learns
q = softmax(v·B/τ_s) with KL(p‖q) (+ optionally InfoNCE to the audio). No event log is read: the supervision is the
unlabeled soundtrack and the user's own library. The visual attention head trains (`train="head"`, over a fixed
trunk), or a small student's whole visual encoder (`train="visual"`: it learns the moment from raw pixels); Ea and
the shared projector stay fixed, so the bank embeddings do not move.

With `targets="fingerprint"` the soundtrack speaks more sharply: the library's own waveforms are found in it by
matched filtering (distill.fingerprint), and only the windows whose first frame shows a library sound starting train,
each towards that sound. Still no event log: the same two inputs, for footage that plays the library's files.

    python -m distill.bank_distill --model runs/.../model.safetensors --sounds ../shared/data/gameplay/sounds -o runs/bd
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgeav.atomic import write_json
from edgeav.errors import EdgeavError
from edgeav.embed import embed_mels, embed_sound_file
from edgeav.io import audio_files
from edgeav.models import load_model, save_model
from edgeav.models.store import model_files, resolve_model_path
from distill.data import WindowSampler, encode_window_visuals
from distill.loop import warmup_cosine


@dataclass
class BankDistillConfig:
    model: str                       # stage-1 model (.safetensors)
    sounds: str                      # the sound library (folder) the visual side learns to point into
    out: str = "runs/bank_distill"
    cache: str = ".cache/gameplay"
    steps: int = 1500
    batch: int = 256
    lr: float = 1e-3
    tau_target: float = 0.05
    tau_student: float = 0.05
    w_nce: float = 0.0               # InfoNCE between v and the (frozen) audio embedding of the same window
    target_center: float = 0.0       # subtract this × each library sound's mean similarity over all windows from the
                                     # target logits: "hub" sounds (long ambiences) that match every mixture stop
                                     # dominating the targets (hubness reduction; 0 = off)
    target_center_k: int = 0         # 0: each sound's mean similarity over all windows; k: over its k most similar
                                     # windows (CSLS-style: a hub is near many windows, a rare effect near few)
    onset_quantile: float = 0.0      # train only on windows whose soundtrack has an onset at the picture's moment:
                                     # spectral flux there above this quantile of all windows (0 = every window).
                                     # Music-only windows teach the visual side hubs; the audio says nothing there
    targets: str = "soundtrack"      # "soundtrack": every window, p = the frozen audio encoder's match of its
                                     # soundtrack in the library; "fingerprint": only windows whose first frame
                                     # shows a library sound starting, found by matched filtering of the library's
                                     # own waveforms in the soundtrack (distill.fingerprint; needs the library's
                                     # exact files in the footage, as a game's own footage has)
    fingerprint_rate: int = 16000    # the matcher's sample rate (distill.fingerprint.FingerprintConfig)
    balance: float = 0.0             # draw training windows with weight ∝ (windows of their target sound)^-balance:
                                     # a sound that starts in few windows is seen as often as a common one at 1.0.
                                     # The counts are the targets' own (matched filtering, no event log). 0 =
                                     # uniform; 0.5 lost on val for the shipped student's three seeds (session 15,
                                     # benchmarks/results/students_s15.md)
    train: str = "head"              # what learns: "head" (the attention head over a fixed trunk) or "visual" (the
                                     # whole visual encoder: a small student learns the moment from raw pixels)
    tune_levels: int = 0             # with train="head" over a pretrained trunk: its last N tapped levels learn too
                                     # (1 = Lite0's stride-32 stage), recomputed from the cached map before them
    seed: int = 0
    log_every: int = 50
    splits: tuple[str, ...] = ("train",)
    games: tuple[str, ...] = ()      # only clips of these games; () = all
    audio_model: str = ""            # whose audio encoder makes the targets and bank; "" = the model's teacher
                                     # (a distilled student's banks are indexed by its teacher), else the model


def library_embeddings(model, folder: str) -> tuple[list[str], np.ndarray]:
    files = audio_files(folder)
    ids, embs = [], []
    for p in files:
        try:
            embs.append(embed_sound_file(lambda m: embed_mels(model, m), p, max_seconds=30.0))
            ids.append(p.relative_to(folder).as_posix())
        except Exception:
            continue
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
        mel = np.stack([sampler.audio_window(c, k) for c, k in rows[i:i + 512]])
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
        out[mine] = [flux[a + lo:a + hi + 1].max(initial=0.0) for a in m0]
    return out


def soundtrack_targets(cfg: BankDistillConfig, hearing, sampler: WindowSampler, B: torch.Tensor):
    """(rows, audio embeddings A, targets p): every window's soundtrack embedded by `hearing` and matched against
    the library B, p = softmax((a·B − hub) / τ_t), the hub term only with `target_center`."""
    rows, audio = window_audio_embeddings(hearing, sampler)
    A = torch.from_numpy(audio)
    logits = A @ B.t()
    if cfg.target_center:
        hub = logits.topk(cfg.target_center_k, dim=0).values.mean(0, keepdim=True) if cfg.target_center_k \
            else logits.mean(0, keepdim=True)
        logits = logits - cfg.target_center * hub
    return rows, A, torch.softmax(logits / cfg.tau_target, dim=1)


def fingerprint_targets(cfg: BankDistillConfig, sampler: WindowSampler, ids: list[str], lead_s: float):
    """(rows, p): the windows whose frame at `lead_s` shows a detected library sound starting, p spread evenly over
    the sounds starting there. Detections are made (and kept in the cache) by distill.fingerprint."""
    from distill.fingerprint import FingerprintConfig, detect_footage, load_detections

    folder = detect_footage(cfg.cache, cfg.sounds, FingerprintConfig(sample_rate=cfg.fingerprint_rate),
                            splits=cfg.splits)  # resumes: clips already done are skipped
    fp_ids, found = load_detections(folder, sampler.keys)
    col = {s: i for i, s in enumerate(ids)}
    hits: dict[tuple[int, int], list[int]] = {}
    for c, key in enumerate(sampler.keys):
        for t, j, _ in found.get(key, []):
            k = int(round((t - lead_s) * sampler.fps))
            if fp_ids[j] in col and 0 <= k < sampler.n_starts[c]:
                hits.setdefault((c, k), []).append(col[fp_ids[j]])
    if not hits:
        raise EdgeavError(f"no library sound was found in the footage of {cfg.cache}",
                          "fingerprint targets need the library's own files in the footage: use --targets soundtrack")
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


def bank_distill(cfg: BankDistillConfig) -> Path:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(cfg.model)
    model.requires_grad_(False)
    model.eval()
    if cfg.targets not in ("soundtrack", "fingerprint"):  # checked before the library and footage are read
        raise EdgeavError(f"--targets must be 'soundtrack' or 'fingerprint', not {cfg.targets!r}",
                          "pass --targets soundtrack or --targets fingerprint")
    if cfg.targets == "fingerprint" and cfg.onset_quantile:
        raise EdgeavError("--onset_quantile goes with --targets soundtrack", "drop it")
    if cfg.train not in ("head", "visual"):
        raise EdgeavError(f"--train must be 'head' or 'visual', not {cfg.train!r}",
                          "pass --train head or --train visual")
    frozen = getattr(model.visual.backbone, "frozen", False)
    if cfg.train == "visual" and frozen:
        raise EdgeavError(f"{cfg.model} has a frozen pretrained trunk: its whole visual encoder cannot train",
                          "use --train head (the attention head over the trunk)")
    if cfg.tune_levels:
        if not frozen or cfg.train != "head":
            raise EdgeavError(f"--tune_levels needs a pretrained trunk and --train head ({cfg.model})",
                              "drop --tune_levels, or start from a lite0 teacher")
        model.visual.backbone.set_tune_levels(cfg.tune_levels)  # stored in the saved config
        model.cfg.visual_tune_levels = cfg.tune_levels
    head = model.visual.head if cfg.train == "head" else model.visual
    head.requires_grad_(True)
    params = list(head.parameters())
    if cfg.tune_levels:
        params += model.visual.backbone.tuned_parameters()
        for p in params:
            p.requires_grad_(True)

    t0 = time.perf_counter()
    # the audio side that indexes this model's banks (edgeav.bank.bank_encoder): the student's teacher, or itself
    audio_src = cfg.audio_model or model.cfg.extra.get("teacher") or ""
    hearing = load_model(audio_src).eval() if audio_src else model
    ids, bank = library_embeddings(hearing, cfg.sounds)
    sampler = WindowSampler(cfg.cache, cfg.splits, model.cfg.frame_offsets,
                            features=model.cfg.visual_backbone if frozen else None, frame_size=model.cfg.frame_size,
                            games=cfg.games)
    B = torch.from_numpy(bank)
    if cfg.targets == "fingerprint":
        rows, targets = fingerprint_targets(cfg, sampler, ids, model.cfg.frame_offsets[0])
        if cfg.w_nce:  # the soundtrack's embedding of each of those windows, for the InfoNCE term
            _, audio = window_audio_embeddings(hearing, sampler)
            first = np.concatenate([[0], np.cumsum(sampler.n_starts)[:-1]])  # all_rows is clip-major
            A = torch.from_numpy(audio[first[rows[:, 0]] + rows[:, 1]])
    else:
        rows, A, targets = soundtrack_targets(cfg, hearing, sampler, B)
    pool = np.arange(len(rows))  # the windows training draws from
    if cfg.onset_quantile:
        strength = onset_strength(sampler, rows)
        pool = np.flatnonzero(strength > np.quantile(strength, cfg.onset_quantile))
    draw = balanced_draw(targets[pool], cfg.balance)
    print(f"bank-distill: {len(ids)} library sounds, {cfg.targets} targets for {len(rows)} windows in "
          f"{time.perf_counter() - t0:.0f} s; "
          f"mean target max-prob {targets.max(1).values.mean():.3f}; training on {len(pool)}"
          f"{f', drawn balanced by target sound (^-{cfg.balance})' if cfg.balance else ''}", flush=True)

    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    schedule = warmup_cosine(cfg.lr, 1, cfg.steps)  # cosine decay to 0, no warm-up
    log = open(out / "metrics.jsonl", "w")
    head.train()
    t_last = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        pick = pool[rng.choice(len(pool), min(cfg.batch, len(pool)), replace=False, p=draw)]  # short footage: all
        feats = [sampler.window(c, k)[0] for c, k in rows[pick]]
        for g in opt.param_groups:
            g["lr"] = schedule(step)
        v = encode_window_visuals(model, feats)  # cached trunk maps, or raw frames through the (fixed) backbone
        logq = F.log_softmax(v @ B.t() / cfg.tau_student, dim=1)
        p = targets[pick]
        kl = (p * (torch.log(p + 1e-12) - logq)).sum(1).mean()
        loss = kl
        parts = {"kl": float(kl.detach())}
        if cfg.w_nce:
            a = A[pick]
            logits = v @ a.t() / 0.07
            nce = F.cross_entropy(logits, torch.arange(len(v)))
            loss = loss + cfg.w_nce * nce
            parts["nce"] = float(nce.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % cfg.log_every == 0 or step == cfg.steps:
            agree = float((logq.argmax(1) == p.argmax(1)).float().mean())
            dt = time.perf_counter() - t_last
            t_last = time.perf_counter()
            log.write(json.dumps({"step": step, **parts, "top1_agree": agree,
                                  "samples_per_s": round(cfg.batch * cfg.log_every / dt, 1)}) + "\n")
            log.flush()
    log.close()
    head.eval()
    stage1 = json.loads(model_files(resolve_model_path(cfg.model))[1].read_text()).get("extra", {})
    path = save_model(model, out / "model", extra={"bank_distill": asdict(cfg), "stage1": stage1})
    write_json(out / "done.json", {"seconds": round(time.perf_counter() - t0, 1), "windows": int(len(rows))})
    return path


if __name__ == "__main__":
    import sys

    from distill.loop import cli_config

    print(bank_distill(cli_config(BankDistillConfig, sys.argv[1:])))
