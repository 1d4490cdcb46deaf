"""The training loop for the teacher, single process or `torchrun --nproc_per_node N` (DDP: gloo on CPU, nccl on
GPU). Read top to bottom: config → data → model + task → loop (sample, loss, step, log, checkpoint) → save."""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, asdict, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from edgeav.atomic import atomic_path
from edgeav.models import create_model, save_model
from distill.data import WindowSampler, BankMixer
from distill.losses import info_nce, Correspondence


@dataclass
class TrainConfig:
    cache: str = ".cache/gameplay"          # built by `edgeav cache`
    model: str = "teacher"                  # registry name
    out: str = "runs/teacher"               # checkpoints, metrics.jsonl, final model
    steps: int = 2000
    clips_per_batch: int = 16               # per process
    windows_per_clip: int = 8               # ≥ 2 s apart: same-clip negatives
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.07
    w_contrastive: float = 1.0              # 0 = correspondence only (the research's ablation)
    w_correspondence: float = 1.0
    w_mix: float = 0.0                      # bank-mix loss weight (needs mix_sounds); 0 = off
    mix_sounds: str = ""                    # folder of the user's sound library for the bank-mix loss
    mix_batch: int = 64
    seed: int = 0
    log_every: int = 20
    ckpt_every: int = 200
    splits: tuple[str, ...] = ("train",)
    progress: bool = True
    stop_after: int = 0                     # stop this invocation after N steps (time-boxed jobs); 0 = run to the end
    overrides: dict = field(default_factory=dict)  # model config overrides


class TeacherTask(nn.Module):
    """Model + losses. Visual input is backbone features (frozen trunk, cached) or raw frames."""

    def __init__(self, model, cfg: TrainConfig):
        super().__init__()
        self.model, self.cfg = model, cfg
        self.corr = Correspondence()

    def forward(self, visual, mel, neg_index, clean=None, mixed=None) -> dict[str, torch.Tensor]:
        m = self.model
        v = m.encode_visual_features(visual) if isinstance(visual, list) else m.encode_visual(visual)
        a = m.encode_audio(mel)
        out = {}
        if self.cfg.w_contrastive:
            out.update(info_nce(v, a, self.cfg.temperature))
        out.update(self.corr(v, a, a[neg_index]))
        loss = self.cfg.w_correspondence * out["corr"]
        if self.cfg.w_contrastive:
            loss = loss + self.cfg.w_contrastive * 0.5 * (out["nce_v2a"] + out["nce_a2v"])
        if clean is not None:
            c, x = m.encode_audio(clean), m.encode_audio(mixed)
            mix = info_nce(x, c, self.cfg.temperature)
            out["mix"] = 0.5 * (mix["nce_v2a"] + mix["nce_a2v"])
            loss = loss + self.cfg.w_mix * out["mix"]
        out["loss"] = loss
        return out


def _dist_setup() -> tuple[int, int]:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def _save_checkpoint(path: Path, task, opt, step: int, rng: np.random.Generator):
    state = {"task": task.state_dict(), "opt": opt.state_dict(), "step": step,
             "rng": json.dumps(rng.bit_generator.state), "torch_rng": torch.get_rng_state()}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)


def train(cfg: TrainConfig) -> Path:
    rank, world = _dist_setup()
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    model = create_model(cfg.model, **cfg.overrides)
    frozen_trunk = getattr(model.visual.backbone, "frozen", False)
    sampler = WindowSampler(cfg.cache, cfg.splits, model.cfg.frame_offsets,
                            features=model.cfg.visual_backbone if frozen_trunk else None,
                            frame_size=model.cfg.frame_size)
    mixer = BankMixer(cfg.mix_sounds) if cfg.w_mix else None
    task = TeacherTask(model, cfg)
    params = [p for p in task.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng([cfg.seed, rank])  # each process draws its own clips
    step = 0

    ckpt = out / "checkpoint.pt"
    if ckpt.exists():  # resume: model, optimizer, step and both RNG streams
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        task.load_state_dict(state["task"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        rng.bit_generator.state = json.loads(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        if rank == 0:
            print(f"resumed from {ckpt} at step {step}")

    ddp = nn.parallel.DistributedDataParallel(task) if world > 1 else task
    sched = lambda s: cfg.lr * min(1.0, (s + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps))

    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=step, disable=not (cfg.progress and rank == 0), unit="step")
    log = open(out / "metrics.jsonl", "a") if rank == 0 else None
    t_last, n_last = time.perf_counter(), 0
    task.train()
    stop_at = min(cfg.steps, step + cfg.stop_after) if cfg.stop_after else cfg.steps
    while step < stop_at:
        b = sampler.sample(rng, cfg.clips_per_batch, cfg.windows_per_clip)
        visual = [torch.from_numpy(x) for x in b.visual] if isinstance(b.visual, list) else torch.from_numpy(b.visual)
        for g in opt.param_groups:
            g["lr"] = sched(step)
        extra = [torch.from_numpy(x) for x in mixer.sample(rng, b.mel, cfg.mix_batch)] if mixer else []
        parts = ddp(visual, torch.from_numpy(b.mel), torch.from_numpy(b.neg_index), *extra)
        opt.zero_grad(set_to_none=True)
        parts["loss"].backward()
        nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        step += 1
        n_last += len(b.mel) * world
        if rank == 0:
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                dt = time.perf_counter() - t_last
                rec = {"step": step, **{k: round(float(v.detach()), 4) for k, v in parts.items()},
                       "lr": sched(step - 1), "samples_per_s": round(n_last / dt, 1)}
                bar.set_postfix(loss=rec["loss"], sps=rec["samples_per_s"])
                log.write(json.dumps(rec) + "\n")
                log.flush()
                t_last, n_last = time.perf_counter(), 0
            if step % cfg.ckpt_every == 0 or step == stop_at:
                _save_checkpoint(ckpt, task, opt, step, rng)
    bar.close()
    if rank == 0 and step == cfg.steps:
        log.close()
        save_model(model, out / "model", extra={"train": asdict(cfg), "corr_scale": float(task.corr.scale.detach()),
                                                         "corr_bias": float(task.corr.bias.detach())})
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return out / "model.safetensors"


if __name__ == "__main__":  # torchrun entry: python -m distill.train --key value ...
    import sys

    kv = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    c = TrainConfig()
    for k, v in kv.items():
        k = k.lstrip("-").replace("-", "_")
        cur = getattr(c, k)
        if isinstance(cur, bool):
            setattr(c, k, v.lower() in ("1", "true", "yes"))
        elif isinstance(cur, (tuple, dict)):
            setattr(c, k, json.loads(v))
        else:
            setattr(c, k, type(cur)(v))
    train(c)
