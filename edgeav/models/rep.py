"""Re-parameterizable student blocks (RepVGG, Ding et al. 2021; MobileOne, Vasu et al. 2023) and the deploy form.

A `RepConv` trains as three branches summed before its ReLU — a k×k conv + BN, a 1×1 conv + BN and, where the
shapes allow, an identity BN — and deploys as one k×k conv with bias: eval-mode BatchNorm is affine, so every
branch folds into the k×k kernel exactly. The deployed net is a plain stack of dense convs + ReLU, which is what
ONNX Runtime's int8 CPU kernels run fastest: measured on this project's CPU (AMD EPYC with AVX-512 VNNI, 2 threads,
per layer at the students' shapes), a dense 3×3 conv runs 2–3× faster in INT8 than in FP32, a depthwise 3×3 up to
2–3× slower (research/int8_crossover.py).

`deploy_form(model)` returns the inference copy that `edgeav export` and the torch backend run: Rep branches and
BatchNorms after convs folded, for early-fusion students the frame difference folded into the first conv, and
attention heads folded with the shared projector (edgeav.models.attention.FoldedAttentionHead).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgeav.models.av import AVModel

import copy

import torch
import torch.nn.functional as F
from torch import nn

from edgeav.models.backbones import _TappedStages


def _fold_bn(kernel: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(kernel, bias) of conv(kernel) followed by `bn` in eval mode."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return kernel * scale[:, None, None, None], bn.bias - bn.running_mean * scale


def _conv_bn(cin: int, cout: int, k: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout))


class RepConv(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, kernel: int = 3) -> None:
        super().__init__()
        self.cin, self.cout, self.stride, self.kernel = cin, cout, stride, kernel
        self.conv = _conv_bn(cin, cout, kernel, stride)
        self.scale = _conv_bn(cin, cout, 1, stride) if kernel > 1 else None
        self.identity = nn.BatchNorm2d(cout) if cin == cout and stride == 1 else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.scale is not None:
            y = y + self.scale(x)
        if self.identity is not None:
            y = y + self.identity(x)
        return self.act(y)

    @torch.no_grad()
    def fused(self) -> nn.Sequential:
        """The deploy form: one k×k conv with bias + ReLU, equal to this block in eval mode."""
        kernel, bias = _fold_bn(self.conv[0].weight, self.conv[1])
        if self.scale is not None:
            k1, b1 = _fold_bn(self.scale[0].weight, self.scale[1])
            p = self.kernel // 2
            kernel, bias = kernel + F.pad(k1, [p, p, p, p]), bias + b1
        if self.identity is not None:
            eye = torch.zeros_like(kernel)
            eye[torch.arange(self.cout), torch.arange(self.cin), self.kernel // 2, self.kernel // 2] = 1.0
            ki, bi = _fold_bn(eye, self.identity)
            kernel, bias = kernel + ki, bias + bi
        conv = nn.Conv2d(self.cin, self.cout, self.kernel, self.stride, self.kernel // 2, bias=True)
        conv.weight.copy_(kernel)
        conv.bias.copy_(bias)
        return nn.Sequential(conv, nn.ReLU(inplace=True))


class RepStack(_TappedStages):
    """A student backbone of RepConv stages: a k×k stride-s stem (conv + BN + ReLU, the one layer INT8 exports keep
    in float), then per stage a stride-2 3×3 RepConv into the stage's width and `blocks_per_stage − 1` stride-1
    ones. Every stage output can be tapped."""

    def __init__(
        self,
        in_channels: int = 6,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        taps: tuple[int, ...] = (1, 2, 3),
        blocks_per_stage: int = 1,
        stem_kernel: int = 4,
        stem_stride: int = 4,
    ) -> None:
        super().__init__()
        stem = nn.Sequential(
            nn.Conv2d(
                in_channels, widths[0], stem_kernel, stem_stride, (stem_kernel - stem_stride + 1) // 2, bias=False
            ),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages = [stem]
        for cin, cout in zip(widths[:-1], widths[1:]):
            stages.append(
                nn.Sequential(RepConv(cin, cout, 2), *[RepConv(cout, cout, 1) for _ in range(blocks_per_stage - 1)])
            )
        self.stages = nn.ModuleList(stages)
        self.taps = taps
        self.channels = [widths[i] for i in taps]


def _fold_conv_bn(module: nn.Module) -> None:
    """Every Conv2d → BatchNorm2d pair inside a Sequential becomes one conv (the BN an Identity)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for child in module.children():
        if isinstance(child, nn.Sequential):
            for i in range(len(child) - 1):
                if isinstance(child[i], nn.Conv2d) and isinstance(child[i + 1], nn.BatchNorm2d):
                    child[i], child[i + 1] = fuse_conv_bn_eval(child[i], child[i + 1]), nn.Identity()
        _fold_conv_bn(child)


def _replace_rep_convs(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, RepConv):
            setattr(module, name, child.fused())
        else:
            _replace_rep_convs(child)


def _head_map_sizes(model: AVModel) -> dict[str, list[tuple[int, int]]]:
    """(H, W) of the maps each encoder's head receives at the model's input size (one forward on zeros)."""
    cfg, sizes = model.cfg, {}
    hooks = [
        enc.head.register_forward_pre_hook(lambda mod, args, k=k: sizes.__setitem__(k, [f.shape[-2:] for f in args[0]]))
        for k, enc in (("visual", model.visual), ("audio", model.audio))
    ]
    try:
        w, h = cfg.frame_size
        model.encode_visual(torch.zeros(1, cfg.visual_frames, 3, h, w))
        model.encode_audio(torch.zeros(1, cfg.audio_frames, cfg.n_mels))
    finally:
        for hk in hooks:
            hk.remove()
    return sizes


@torch.no_grad()
def deploy_form(model: AVModel) -> AVModel:
    """An eval-mode copy of `model` for inference and export, computing the same function: RepConv branches and
    BatchNorms that follow convs folded into single convs, an early-fusion model's [f0, f1 − f0] input folded into
    its first conv (conv is linear: W·[f0, f1 − f0] = [W0 − W1, W1]·[f0, f1]) so the deployed graph reads the frame
    stack as it is instead of slicing, subtracting and concatenating full-resolution frames, and attention heads
    folded with the shared projector. Deploy copies are not for training or saving."""
    m = copy.deepcopy(model).eval()
    _replace_rep_convs(m)
    _fold_conv_bn(m)
    m.visual.fold_frame_difference()
    if m.cfg.attention:  # the heads and the shared projector after them fold into one matrix each
        sizes = _head_map_sizes(m)
        m.visual.head = m.visual.head.folded(sizes["visual"], m.projector)
        m.audio.head = m.audio.head.folded(sizes["audio"], m.projector)
        m.projector_folded = True
    m.deployed = True
    return m
