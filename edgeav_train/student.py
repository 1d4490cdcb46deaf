"""Offline distillation of a small student into the frozen teacher's embedding space.

The teacher runs once over every training window (visual and audio) and over the user's sound library (clean
windows and bank-mix windows); its embeddings are cached on disk. Each student step then costs only the student:
- align:      1 − cos(student, teacher) per modality (same space, so one sound bank serves teacher and students),
- relational: the student's cross-modal similarity distribution over the batch (softmax of v·aᵀ/τ) matched to the
              teacher's with KL, both directions,
- bank:       the student's ranking of the library (softmax of v·Bᵀ/τ over the teacher's bank embeddings)
              matched to the teacher's, KL — what recommendation accuracy measures,
- nce:        the contrastive loss on the data (InfoNCE between the student's own v and a).
Same loop shape, DDP and checkpointing as `edgeav_train.train`.

    python -m edgeav_train.student --student student --sounds ../shared/data/gameplay/sounds --out runs/student
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from edgeav.atomic import atomic_path, sha1_file
from edgeav.embed import embed_mels, pool, sound_windows
from edgeav.io import audio_files
from edgeav.models import ModelCard, create_model, load_model, save_model
from edgeav.models.store import audio_sha1, resolve_model_path
from edgeav_train.data import WindowSampler, encode_window_visuals
from edgeav_train.loop import LoopConfig, cli_config, dist_setup, finish_distributed, fit
from edgeav_train.losses import info_nce, kl_logits


@dataclass
class DistillConfig:
    sounds: str
    """Your sound library: its clean windows and mixes teach the audio side and the bank loss."""
    teacher: str = "teacher"
    """Frozen teacher: registry name with shipped weights, or a .safetensors path."""
    student: str = "student"
    """Student architecture (registry name: edgeav models)."""
    cache: str = ".cache/gameplay"
    """Training footage cache (edgeav train cache)."""
    out: str = "runs/student"
    """Folder for checkpoints, metrics.jsonl and the model."""
    steps: int = 4000
    """Optimizer steps."""
    batch: int = 128
    """Footage windows per step and process."""
    library_batch: int = 64
    """Library and bank-mix windows per step (audio side)."""
    lr: float = 3e-3
    """Peak learning rate (warm-up, then cosine decay to 0)."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    temperature: float = 0.07
    """Temperature of the relational, bank and contrastive softmaxes."""
    w_align: float = 1.0
    """Weight of 1 − cos(student, teacher), per modality."""
    w_relational: float = 1.0
    """Weight of the batch's cross-modal similarity distribution matched to the teacher's."""
    w_bank: float = 1.0
    """Weight of the library ranking matched to the teacher's."""
    w_nce: float = 0.2
    """Weight of InfoNCE between the student's own visual and audio embeddings."""
    n_mixes: int = 4000
    """Fixed bank-mix windows (a library sound over footage audio) for the audio side."""
    seed: int = 0
    """Seed of the initialisation and the windows drawn."""
    log_every: int = 50
    """Steps between metrics.jsonl records."""
    ckpt_every: int = 500
    """Steps between checkpoints (resume from OUT/checkpoint.pt) and validation."""
    progress: bool = True
    """Show a progress bar."""
    stop_after: int = 0
    """Stop this invocation after N steps (time-boxed jobs; run again to resume); 0 = run to the end."""
    overrides: dict = field(default_factory=dict)
    """Student config overrides, as JSON (e.g. '{"embed_dim": 128}')."""


# ---------------------------------------------------------------- teacher outputs, computed once
def _library_windows(folder: str) -> list[np.ndarray]:
    """Each readable library file's 1 s windows, as the bank embeds them (edgeav.embed.sound_windows)."""
    from edgeav.io.audio import read_audio

    mels, skipped = [], []
    for p in audio_files(folder):
        try:
            mels.append(sound_windows(read_audio(p, 16000, max_seconds=30.0)).astype(np.float32))
        except Exception as e:  # an unreadable file is left out of distillation, and said so
            skipped.append(f"{p.name} ({type(e).__name__})")
    if skipped:
        print(f"distill: {len(skipped)} unreadable library files left out: {', '.join(skipped[:5])}", flush=True)
    if not mels:
        raise ValueError(f"no readable sounds under {folder}")
    return mels


@torch.no_grad()
def teacher_targets(
    teacher: str, cache: str | Path, sounds: str, n_mixes: int = 4000, seed: int = 0, splits=("train", "val")
) -> Path:
    """The teacher's embeddings of every window (start on the frame grid) of `splits`, of the library's windows, of
    a fixed set of bank-mix windows, and of each library file (its bank vector). Cached by teacher hash + inputs."""
    src = resolve_model_path(teacher)
    key = hashlib.sha1(f"{sha1_file(src)}{Path(sounds).resolve()}{n_mixes}{seed}{splits}".encode()).hexdigest()[:12]
    path = Path(cache) / f"teacher-targets-{key}.npz"
    if path.exists():
        return path
    t0 = time.perf_counter()
    model = load_model(teacher).eval()
    arrays, samplers = {}, {}
    for split in splits:
        try:
            s = samplers[split] = WindowSampler.for_model(cache, model, (split,))
        except ValueError:
            continue  # a cache without this split (a small folder of footage may have no val clips)
        rows = s.all_rows()
        tv, ta = [], []
        for i in range(0, len(rows), 256):
            vis, mel = zip(*(s.window(c, k) for c, k in rows[i : i + 256]))
            tv.append(encode_window_visuals(model, vis).numpy())
            ta.append(embed_mels(model, np.stack(mel), batch=256))
        arrays[f"{split}_rows"], arrays[f"{split}_v"], arrays[f"{split}_a"] = (
            rows,
            np.concatenate(tv),
            np.concatenate(ta),
        )
        arrays[f"{split}_keys"] = np.array(s.keys)
    per_file = _library_windows(sounds)
    lib = np.concatenate(per_file)
    # bank-mix windows: a clean library window over a random training soundtrack window at a random gain
    rng = np.random.default_rng(seed)
    bg_rows = arrays["train_rows"][rng.choice(len(arrays["train_rows"]), n_mixes)]
    bg = np.stack([samplers["train"].audio_window(c, k) for c, k in bg_rows])
    gain = rng.uniform(-18.0, 6.0, size=(n_mixes, 1, 1))
    mixes = np.log(np.exp(bg) + np.exp(lib[rng.choice(len(lib), n_mixes)]) * 10 ** (gain / 10)).astype(np.float32)
    library_mels = np.concatenate([lib, mixes])
    arrays["library_mel"] = library_mels.astype(np.float16)
    arrays["library_a"] = embed_mels(model, library_mels, batch=256)
    arrays["bank"] = np.stack([pool(embed_mels(model, m)) for m in per_file])  # each file's bank vector
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    print(
        f"teacher targets: {sum(len(v) for k, v in arrays.items() if k.endswith('_rows'))} windows, "
        f"{len(library_mels)} library "
        f"windows in {time.perf_counter() - t0:.0f} s → {path}",
        flush=True,
    )
    return path


# ---------------------------------------------------------------- the task: student + losses against cached targets


class DistillTask(nn.Module):
    def __init__(self, student, cfg: DistillConfig, bank: torch.Tensor) -> None:
        super().__init__()
        self.student, self.cfg = student, cfg
        self.register_buffer("bank", bank)

    def forward(self, frames, mel, tv, ta, lib_mel, lib_a) -> dict[str, torch.Tensor]:
        c, s, tau = self.cfg, self.student, self.cfg.temperature
        v, a = s.encode_visual(frames), s.encode_audio(mel)
        la = s.encode_audio(lib_mel)
        out = {
            "align_v": (1 - (v * tv).sum(1)).mean(),
            "align_a": (1 - torch.cat([(a * ta).sum(1), (la * lib_a).sum(1)])).mean(),
            "relational": 0.5
            * (kl_logits(tv @ ta.t() / tau, v @ a.t() / tau) + kl_logits(ta @ tv.t() / tau, a @ v.t() / tau)),
            "bank": kl_logits(tv @ self.bank.t() / tau, v @ self.bank.t() / tau),
        }
        nce = info_nce(v, a, tau)
        out["nce"] = 0.5 * (nce["nce_v2a"] + nce["nce_a2v"])
        out["loss"] = (
            c.w_align * (out["align_v"] + out["align_a"])
            + c.w_relational * out["relational"]
            + c.w_bank * out["bank"]
            + c.w_nce * out["nce"]
        )
        return out


@torch.no_grad()
def val_alignment(student, sampler: WindowSampler, rows: np.ndarray, tv: np.ndarray, n: int = 512) -> float:
    """Mean cosine between the student's and the teacher's visual embeddings on held-out (val) windows."""
    pick = np.linspace(0, len(rows) - 1, min(n, len(rows))).astype(int)
    frames = sampler.visuals(rows[pick])
    student.eval()
    v = student.encode_visual(torch.from_numpy(frames)).numpy()
    student.train()
    return float((v * tv[pick]).sum(1).mean())


def distill(cfg: DistillConfig) -> Path:
    rank, world = dist_setup()
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        teacher_targets(cfg.teacher, cfg.cache, cfg.sounds, cfg.n_mixes, cfg.seed)
    if dist.is_initialized():
        dist.barrier()
    z = dict(np.load(teacher_targets(cfg.teacher, cfg.cache, cfg.sounds, cfg.n_mixes, cfg.seed)))

    torch.manual_seed(cfg.seed)  # the student's init must not depend on whether the teacher ran in this process
    student = create_model(cfg.student, **cfg.overrides)
    sc = student.cfg
    if sc.embed_dim != z["train_v"].shape[1]:
        raise ValueError(
            f"student {cfg.student} embeds into {sc.embed_dim} dims, the teacher into "
            f"{z['train_v'].shape[1]}: set embed_dim to the teacher's"
        )
    train_s = WindowSampler(cfg.cache, ("train",), sc.frame_offsets, frame_size=sc.frame_size)
    val_s = WindowSampler(cfg.cache, ("val",), sc.frame_offsets, frame_size=sc.frame_size) if "val_rows" in z else None
    assert list(train_s.keys) == list(z["train_keys"]), "teacher targets were made from another cache"
    rows, TV, TA = z["train_rows"], torch.from_numpy(z["train_v"]), torch.from_numpy(z["train_a"])
    LM, LA = z["library_mel"], torch.from_numpy(z["library_a"])
    task = DistillTask(student, cfg, torch.from_numpy(z["bank"]))
    params = [p for p in task.parameters() if p.requires_grad]

    def next_batch(rng):
        pick = rng.choice(len(rows), min(cfg.batch, len(rows)), replace=False)  # short footage: all windows
        frames, mel = zip(*(train_s.window(c, k) for c, k in rows[pick]))
        lib = rng.choice(len(LM), cfg.library_batch, replace=False)
        inputs = (
            torch.from_numpy(np.stack(frames)),
            torch.from_numpy(np.stack(mel)),
            TV[pick],
            TA[pick],
            torch.from_numpy(LM[lib].astype(np.float32)),
            LA[lib],
        )
        return inputs, cfg.batch

    def validation():
        return {"val_align_v": round(val_alignment(student, val_s, z["val_rows"], z["val_v"]), 4)}

    loop = LoopConfig.of(cfg, warmup=100)
    done = fit(task, params, next_batch, out, loop, validation if val_s is not None else None)
    if rank == 0 and done:
        save_model(
            student.eval(),
            out / "model",
            ModelCard(
                teacher=cfg.teacher,
                teacher_sha1=sha1_file(resolve_model_path(cfg.teacher)),
                teacher_audio_sha1=audio_sha1(load_model(cfg.teacher)),
                provenance={"distill": asdict(cfg)},
            ),
        )
    finish_distributed()
    return out / "model.safetensors"


if __name__ == "__main__":  # torchrun entry: python -m edgeav_train.student --key value ...
    import sys

    print(distill(cli_config(DistillConfig, sys.argv[1:])))
