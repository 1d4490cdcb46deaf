"""Model cost: parameters and multiply-accumulates (MACs) per encoder call, counted from the layers that run.

MACs are counted by forward hooks on Conv2d and Linear (the attention's softmax-weighted sums add a few thousand,
left out, as the usual counters do). Numbers are for batch 1 at the model's own input size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def _count(module: nn.Module, fn: Callable[..., object], *inputs: torch.Tensor) -> int:
    total = 0

    def conv_hook(m: nn.Conv2d, inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total += out.numel() // out.shape[0] * k

    def linear_hook(m: nn.Linear, inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() // out.shape[0] * m.in_features

    def folded_head_hook(
        m: nn.Module, inp: tuple, out: torch.Tensor
    ) -> None:  # its scores are matmuls with the weights of a Linear it holds
        nonlocal total
        total += m.score_macs

    from edgeav.models.attention import FoldedAttentionHead

    hooks = []
    for m in module.modules():
        if isinstance(m, FoldedAttentionHead):
            hooks.append(m.register_forward_hook(folded_head_hook))
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            fn(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return total


def encoder_costs(model: nn.Module) -> dict[str, dict[str, int]]:
    """{'visual': {'params', 'macs'}, 'audio': {...}} for batch 1, of the deploy form (what runs: re-parameterized
    blocks folded). The shared projector counts in both (in the deploy form of an attention model it is folded into
    each encoder's head matrix, so it is counted there and not again)."""
    from edgeav.models.rep import deploy_form

    model = deploy_form(model)
    cfg = model.cfg
    w, h = cfg.frame_size
    frames = torch.zeros(1, cfg.visual_frames, 3, h, w)
    mel = torch.zeros(1, cfg.audio_frames, cfg.n_mels)
    proj = 0 if model.projector_folded else sum(p.numel() for p in model.projector.parameters())
    return {
        "visual": {
            "params": sum(p.numel() for p in model.visual.parameters()) + proj,
            "macs": _count(model, model.encode_visual, frames),
        },
        "audio": {
            "params": sum(p.numel() for p in model.audio.parameters()) + proj,
            "macs": _count(model, model.encode_audio, mel),
        },
    }
