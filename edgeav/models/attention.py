"""Attention pooling as in "Learn to Pay Attention" (Jetley et al. 2018), used by the research's encoders.

For each intermediate map L (C_l × H × W) and the global vector g: project L to the shared width D, compatibility
c = 1×1 conv(L' + g) (additive), softmax over the H·W positions, attended vector = Σ softmax(c) · L'.
"""

from __future__ import annotations

import torch
from torch import nn


def attend(scores: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """scores (B, 1, H, W), values (B, C, H, W) → (Σ softmax(scores) · values over positions (B, C), the attention
    map (B, H, W)). A product and a sum rather than einsum over flattened maps: the same numbers, and an exported
    graph without the shape arithmetic that flattening a dynamic-batch tensor takes."""
    a = torch.softmax(scores.flatten(1), dim=1).view_as(scores)
    return (values * a).sum(dim=(2, 3)), a[:, 0]


class AttentionPool(nn.Module):
    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, 1)
        self.score = nn.Conv2d(dim, 1, 1)

    def forward(self, local: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """local (B, C, H, W), g (B, D) → (attended (B, D), attention map (B, H, W) summing to 1)."""
        x = self.proj(local)
        return attend(self.score(x + g[:, :, None, None]), x)


class MultiResolutionHead(nn.Module):
    """Attention over several resolutions (or plain pooling for the baseline) → linear → embedding."""

    def __init__(
        self,
        channels: list[int],
        dim: int,
        embed_dim: int,
        attention: bool = True,
        global_map: tuple[int, int, int] | None = None,
    ) -> None:
        """`global_map` (C, H, W): the backbone returns one more map after the attended ones, and g comes from it
        through a dense conv over the whole (fixed-size) map, as in the research's released encoders; otherwise g
        is the mean of the last attended map, projected."""
        super().__init__()
        self.attention = attention
        self.dense_global = global_map is not None
        if self.dense_global:
            self.global_proj = nn.Conv2d(global_map[0], dim, tuple(global_map[1:]))
        else:
            self.global_proj = nn.Linear(channels[-1], dim)
        if attention:
            self.pools = nn.ModuleList(AttentionPool(c, dim) for c in channels)
            self.out = nn.Linear(dim * len(channels), embed_dim)
        else:
            self.out = nn.Linear(dim, embed_dim)

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.dense_global:
            g, feats = self.global_proj(feats[-1]).flatten(1), feats[:-1]
        else:
            g = self.global_proj(feats[-1].mean(dim=(2, 3)))
        if not self.attention:
            return self.out(torch.relu(g)), []
        outs = [pool(f, g) for pool, f in zip(self.pools, feats)]
        return self.out(torch.cat([v for v, _ in outs], dim=1)), [a for _, a in outs]

    @torch.no_grad()
    def folded(self, map_sizes: list[tuple[int, int]], projector: nn.Linear | None = None) -> FoldedAttentionHead:
        """This head (and `projector` after it, if given) as a `FoldedAttentionHead`: the same function, fewer ops.
        `map_sizes`: (H, W) of each attended map at the model's input size."""
        return FoldedAttentionHead(self, map_sizes, projector)


class FoldedAttentionHead(nn.Module):
    """The deploy form of an attention `MultiResolutionHead`, exact by three identities:
    - the compatibility score(proj(L) + g) is linear, so g adds one constant to every position's score, which the
      softmax over positions removes: g, and the global branch computing it, drop out;
    - the score of proj(L) is one vector w_score · W_proj applied to L's channels at every position;
    - the attention weights sum to 1, so Σ a·proj(L) = W_proj·(Σ a·L) + b_proj: the projection moves after the
      pooling (a matrix on one vector instead of a 1×1 conv over every position), and folds with the output
      linear (and the shared projector after it) into one matrix.
    Per level two small matmuls over the map read as positions × channels (score, then the softmax-weighted sum)
    and one Gemm for all. The positions × channels view is the layout ONNX Runtime's int8 convs produce (NHWC), so
    in an INT8 graph the transposes back to NCHW cancel; the map sizes are fixed by the model's input size, which
    keeps the graph free of shape arithmetic. Chosen over a 1×1 score conv
    and a product-and-sum: faster on each student's visual encoder at FP32 and in the INT8 CPU form (ONNX Runtime,
    batch 1, 2 threads; `python -m research.deploy_form`, results/deploy_form.md)."""

    def __init__(
        self, head: MultiResolutionHead, map_sizes: list[tuple[int, int]], projector: nn.Linear | None = None
    ) -> None:
        super().__init__()
        if not head.attention:
            raise ValueError("only attention heads fold")
        dim = head.pools[0].proj.out_channels
        w_out, b_out = head.out.weight, head.out.bias.clone()
        self.map_sizes = [(int(h), int(w)) for h, w in map_sizes[: len(head.pools)]]
        self.scores = nn.ModuleList()
        blocks = []
        for i, p in enumerate(head.pools):
            w_proj, b_proj = p.proj.weight[:, :, 0, 0], p.proj.bias
            score = nn.Linear(w_proj.shape[1], 1, bias=False)  # the score's bias is a constant too
            score.weight.copy_(p.score.weight[:, :, 0, 0] @ w_proj)
            self.scores.append(score)
            w_level = w_out[:, i * dim : (i + 1) * dim]
            blocks.append(w_level @ w_proj)
            b_out += w_level @ b_proj
        weight = torch.cat(blocks, dim=1)
        if projector is not None:
            weight, b_out = projector.weight @ weight, projector.weight @ b_out + projector.bias
        self.out = nn.Linear(weight.shape[1], weight.shape[0])
        self.out.weight.copy_(weight)
        self.out.bias.copy_(b_out)

    @property
    def score_macs(self) -> int:
        """Multiply-accumulates of the scores per input (the weighted sums are left out, as for AttentionPool)."""
        return sum(s.in_features * h * w for s, (h, w) in zip(self.scores, self.map_sizes))

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        pooled, maps = [], []
        for score, f, (h, w) in zip(self.scores, feats, self.map_sizes):
            c = score.in_features
            x = f.permute(0, 2, 3, 1).reshape(-1, h * w, c)  # (B, positions, channels)
            a = torch.softmax(score.weight @ x.transpose(1, 2), dim=-1)  # (B, 1, positions)
            pooled.append((a @ x).reshape(-1, c))
            maps.append(a.reshape(-1, h, w))
        return self.out(torch.cat(pooled, dim=1)), maps
