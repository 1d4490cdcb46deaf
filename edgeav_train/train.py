"""The training loop for the teacher, single process or `torchrun --nproc_per_node N` (DDP: gloo on CPU, nccl on
GPU). Read top to bottom: config → data → model + task → loop (sample, loss, step, log, checkpoint) → save."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from edgeav.models import ModelCard, create_model, save_model
from edgeav_train.data import BankMixer, WindowSampler
from edgeav_train.loop import LoopConfig, cli_config, dist_setup, finish_distributed, fit
from edgeav_train.losses import Correspondence, info_nce


@dataclass
class TrainConfig:
    cache: str = ".cache/gameplay"
    """Training footage cache (edgeav train cache)."""
    model: str = "teacher"
    """Architecture to train (registry name: edgeav models)."""
    out: str = "runs/teacher"
    """Folder for checkpoints, metrics.jsonl and the model."""
    steps: int = 2000
    """Optimizer steps."""
    clips_per_batch: int = 16
    """Clips per step and process."""
    windows_per_clip: int = 8
    """Windows per clip, ≥ 2 s apart: they are each other's same-clip negatives."""
    lr: float = 2e-3
    """Peak learning rate (warm-up, then cosine decay to 0)."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    temperature: float = 0.07
    """Temperature of the contrastive softmaxes."""
    w_contrastive: float = 1.0
    """Weight of cross-modal InfoNCE (0 = correspondence only, the research's ablation)."""
    w_correspondence: float = 1.0
    """Weight of audio-visual correspondence (binary: in sync or not)."""
    w_mix: float = 0.0
    """Weight of the bank-mix loss: a library sound mixed into the soundtrack is matched to its clean self (needs
    --mix-sounds; 0 = off)."""
    mix_sounds: str = ""
    """Your sound library, for the bank-mix loss."""
    mix_batch: int = 64
    """Bank-mix pairs per step."""
    seed: int = 0
    """Seed of the initialisation and the windows drawn."""
    log_every: int = 20
    """Steps between metrics.jsonl records."""
    ckpt_every: int = 200
    """Steps between checkpoints (resume from OUT/checkpoint.pt)."""
    splits: tuple[str, ...] = ("train",)
    """Cache splits that train."""
    games: tuple[str, ...] = ()
    """Only clips of these games (leave-one-game-out; none = all)."""
    progress: bool = True
    """Show a progress bar."""
    stop_after: int = 0
    """Stop this invocation after N steps (time-boxed jobs; run again to resume); 0 = run to the end."""
    overrides: dict = field(default_factory=dict)
    """Model config overrides, as JSON (e.g. '{"attn_dim": 64}')."""


class TeacherTask(nn.Module):
    """Model + losses. Visual input is backbone features (frozen trunk, cached) or raw frames."""

    def __init__(self, model, cfg: TrainConfig) -> None:
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


def train(cfg: TrainConfig) -> Path:
    rank, world = dist_setup()
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    model = create_model(cfg.model, **cfg.overrides)
    sampler = WindowSampler.for_model(cfg.cache, model, cfg.splits, cfg.games)
    mixer = BankMixer(cfg.mix_sounds) if cfg.w_mix else None
    task = TeacherTask(model, cfg)
    params = [p for p in task.parameters() if p.requires_grad]

    def next_batch(rng):
        b = sampler.sample(rng, cfg.clips_per_batch, cfg.windows_per_clip)
        visual = [torch.from_numpy(x) for x in b.visual] if isinstance(b.visual, list) else torch.from_numpy(b.visual)
        mixes = [torch.from_numpy(x) for x in mixer.sample(rng, b.mel, cfg.mix_batch)] if mixer else []
        return (visual, torch.from_numpy(b.mel), torch.from_numpy(b.neg_index), *mixes), len(b.mel)

    loop = LoopConfig.of(cfg, warmup=50)
    done = fit(task, params, next_batch, out, loop)
    if rank == 0 and done:
        trained = {
            "train": asdict(cfg),
            "corr_scale": float(task.corr.scale.detach()),
            "corr_bias": float(task.corr.bias.detach()),
        }
        save_model(model, out / "model", ModelCard(provenance=trained))
    finish_distributed()
    return out / "model.safetensors"


if __name__ == "__main__":  # torchrun entry: python -m edgeav_train.train --key value ...
    import sys

    train(cli_config(TrainConfig, sys.argv[1:]))
