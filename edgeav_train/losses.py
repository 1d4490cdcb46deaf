"""Self-supervised losses; each returns a dict of named parts (open_clip style). Inputs are L2-normalized."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def info_nce(v: torch.Tensor, a: torch.Tensor, temperature: float) -> dict[str, torch.Tensor]:
    """Cross-modal contrastive loss over the batch, both directions: row i's positive is column i."""
    logits = v @ a.t() / temperature
    target = torch.arange(len(v), device=v.device)
    return {"nce_v2a": F.cross_entropy(logits, target), "nce_a2v": F.cross_entropy(logits.t(), target)}


class Correspondence(nn.Module):
    """Audio-visual correspondence: are (v, a) synchronized? logit = scale·cos(v, a) + bias, binary cross-entropy
    over the positives and their negatives (same clip ≥ 2 s away, or another clip)."""

    def __init__(self, init_scale: float = 10.0, init_bias: float = -5.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(init_scale))
        self.bias = nn.Parameter(torch.tensor(init_bias))

    def logits(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.scale * (v * a).sum(-1) + self.bias

    def forward(self, v, a, a_neg) -> dict[str, torch.Tensor]:
        pos, neg = self.logits(v, a), self.logits(v, a_neg)
        loss = 0.5 * (
            F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
            + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))
        )
        acc = 0.5 * ((pos > 0).float().mean() + (neg < 0).float().mean())
        return {"corr": loss, "corr_acc": acc.detach()}


def kl_logits(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(p) ‖ softmax(q)) per row, averaged: a student's distribution matched to a teacher's."""
    p = F.softmax(p_logits, dim=1)
    return (p * (F.log_softmax(p_logits, dim=1) - F.log_softmax(q_logits, dim=1))).sum(1).mean()


def kl_to_targets(p: torch.Tensor, q_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """KL(p ‖ softmax(q)) per row, averaged, for target distributions p (rows sum to 1, zeros allowed), with how
    often the two agree on the top entry."""
    logq = F.log_softmax(q_logits, dim=1)
    kl = (p * (torch.log(p + 1e-12) - logq)).sum(1).mean()
    return {"kl": kl, "top1_agree": (logq.argmax(1) == p.argmax(1)).float().mean().detach()}
