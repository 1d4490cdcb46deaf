"""The event head: at frame rate, does an effect start on this frame, and which sound is it?

Each frame enters with its change from the frame before ([f_t, f_t − f_{t−1}]: motion is what starts an effect)
through a small conv stack at the model's frame size; an attention map over the last conv level (its map drives
`--explain`) and a max over it pool the frame to one vector. A temporal layer (two 1-D convs over the frames from
`before` frames ahead of the candidate frame to `after` frames past it) reads the moment; two heads share that
trunk: the **onset** logit of the candidate frame and an **embedding** in the sound bank's space (the same space
the model's audio encoder indexes sounds into), so the event's sound is a bank search like a window's.

Frames are encoded once each (`encode_frames`), so a stream costs one frame pass plus the small temporal head per
frame (`from_codes`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgeav.events import EventSpec
from edgeav.yuv import BT601_LIMITED, YUV_ZERO


def to_tensor(stacks: np.ndarray, unit: bool = True) -> torch.Tensor:
    """uint8 frames (B, T, H, W, 3) → float (B, T, 3, H, W) in [0, 1], the event head's input (`unit` False: on
    the pixel scale, 0 … 255)."""
    t = torch.from_numpy(np.ascontiguousarray(stacks)).permute(0, 1, 4, 2, 3).float()
    return t.div_(255.0) if unit else t


def pooled_tensor(stacks: np.ndarray, pool: int, unit: bool = True) -> torch.Tensor:
    """uint8 frames (B, T, H, W, 3) → float (B, T, 3, H/pool, W/pool) in [0, 1]: `to_tensor` then the head's
    average pooling, done on the integers (pool² uint8 values sum within int16) so only a pool²-th of the floats
    is made; equal to it up to float rounding. The torch paths feed `encode_pooled` with it. `unit` False: on the
    pixel scale (0 … 255), for `encode_pooled(..., scale=1 / 255)`."""
    a = np.asarray(stacks)
    if pool == 1:
        return to_tensor(a, unit)
    h, w = a.shape[-3] // pool * pool, a.shape[-2] // pool * pool  # AvgPool2d drops the remainder rows too
    t = torch.from_numpy(np.ascontiguousarray(a[..., :h, :w, :]))
    t = t.view(*a.shape[:-3], h // pool, pool, w // pool, pool, a.shape[-1])  # (..., h', dy, w', dx, 3)
    rows = t.select(-4, 0).to(torch.int16)  # torch's integer adds: 6× numpy's strided ones at 128×96
    for dy in range(1, pool):
        rows += t.select(-4, dy)
    total = rows.select(-2, 0).clone()
    for dx in range(1, pool):
        total += rows.select(-2, dx)
    return total.permute(0, 1, 4, 2, 3).float().mul_(1.0 / (pool * pool * (255.0 if unit else 1.0)))


class Yuv420Level(NamedTuple):
    """An event head's per-frame first conv, a patch conv, as one matrix over each s×s patch's bytes of NV12
    frames (`EventHead.yuv420_first_level`), in `yuv420_patches`' byte order."""

    weight: torch.Tensor  # (1.5·s², 2c)
    bias: torch.Tensor  # (2c,)
    stride: int


def _patch_rows(plane: torch.Tensor, rows: int, s: int) -> torch.Tensor:
    """uint8 (N, R, row bytes) → (N, R / rows, row bytes / s, rows, s bytes), a view: each patch's `rows` rows of
    `s` bytes, each row as one integer where s is 2, 4 or 8 bytes (a gather of 4-byte rows moves a quarter of the
    elements)."""
    word = {2: torch.int16, 4: torch.int32, 8: torch.int64}.get(s, torch.uint8)
    n, r, width = plane.shape
    return plane.view(word).view(n, r // rows, rows, width // s, -1).transpose(2, 3)


def yuv420_patches(planes: torch.Tensor, s: int) -> torch.Tensor:
    """NV12 frames (N, 3H/2, W) uint8 → (N, H/s, W/s, 1.5·s²) uint8: each s×s patch's s luma rows of s samples,
    then its s/2 chroma rows of s/2 interleaved (U, V) pairs, contiguous. The patch conv over them is then one
    matrix product, under half the time of oneDNN's convolutions of the luma and the chroma planes made float
    (research/results/first_level.md)."""
    h = planes.shape[1] * 2 // 3
    parts = torch.cat([_patch_rows(planes[:, :h], s, s), _patch_rows(planes[:, h:], s // 2, s)], 3)
    return parts.view(torch.uint8).flatten(3)


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _patch_bn(cin: int, cout: int, size: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, size, size, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FrameEncoder(nn.Module):
    """[f_t, f_t − f_{t−1}] (6 channels, [0, 1] scale) → (code (D,), attention map (h, w)) per frame.

    `stem` > 1 makes the first level a stem×stem patch conv at stride stem (a learned downsampling that sees every
    pixel: a sprite of a pixel or two still moves its patch's code) instead of a 3×3 conv at stride 2."""

    def __init__(self, widths: tuple[int, ...], dim: int, stem: int = 1) -> None:
        super().__init__()
        layers, cin = [], 6
        for i, w in enumerate(widths):
            layers.append(_patch_bn(cin, w, stem) if i == 0 and stem > 1 else _conv_bn(cin, w, 2))
            cin = w
        layers.append(_conv_bn(cin, cin, 1))
        self.convs = nn.Sequential(*layers)
        self.score = nn.Conv2d(cin, 1, 1)
        self.out = nn.Linear(2 * cin, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.read(self.convs(x.contiguous(memory_format=torch.channels_last)))  # NHWC: oneDNN's faster

    def read(self, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The last conv level's map → (code, attention map)."""
        attn = torch.softmax(self.score(m).flatten(1), dim=1)  # (N, h·w)
        flat = m.flatten(2)
        pooled = torch.cat([(flat * attn[:, None]).sum(-1), flat.amax(-1)], dim=1)
        return torch.relu(self.out(pooled)), attn.view(-1, *m.shape[2:])


class EventHead(nn.Module):
    def __init__(
        self,
        widths: tuple[int, ...],
        dim: int,
        embed_dim: int,
        before: int,
        after: int,
        pool: int = 1,
        fps: float = 25.0,
        stem: int = 1,
    ) -> None:
        super().__init__()
        self.spec = EventSpec(fps, before, after)
        self.pool = nn.AvgPool2d(pool) if pool > 1 else nn.Identity()  # before the change: 1/pool² of the work
        self.encoder = FrameEncoder(widths, dim, stem)
        self.temporal = nn.Sequential(
            nn.Conv1d(dim, dim, 3, padding=1), nn.ReLU(inplace=True), nn.Conv1d(dim, dim, 3, padding=1)
        )
        self.trunk = nn.Sequential(nn.Linear(dim * self.spec.length, 2 * dim), nn.ReLU(inplace=True))
        self.onset = nn.Linear(2 * dim, 1)
        self.embed = nn.Linear(2 * dim, embed_dim)

    @property
    def pool_size(self) -> int:
        return self.pool.kernel_size if isinstance(self.pool, nn.AvgPool2d) else 1

    def encode_frames(self, frames: torch.Tensor, per_frame: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (B, T + 1, 3, H, W) in [0, 1] → codes (B, T, D) and attention (B, T, h, w) of frames 1 … T."""
        b, n = frames.shape[:2]
        pooled = self.pool(frames.flatten(0, 1))
        return self.encode_pooled(pooled.view(b, n, *pooled.shape[1:]), per_frame)

    def encode_pooled(
        self, frames: torch.Tensor, per_frame: bool = True, scale: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`encode_frames` of frames already pooled (`pooled_tensor`), times `scale`: frames on the pixel scale with
        `scale` 1 / 255 skip a pass over every value (the per-frame form scales the first conv's weights instead).

        `per_frame`: the first conv of [f_t, f_t − f_{t−1}] is computed as one conv of each frame alone with the
        weights [W_now + W_change; −W_change] (conv is linear), summed over each frame and the one before it: a run
        of frames is read once each and no 6-channel copy of them is built (a quarter less time per training step,
        a fifth of it per frame at run time for the patch-conv head: the copies cost more than the convs). Else the
        definition's form, one conv of the 6 channels (the exported graph's: its input is frame pairs)."""
        b, n = frames.shape[:2]
        if not per_frame:
            frames = frames * scale if scale != 1.0 else frames
            codes, attn = self.encoder(torch.cat([frames[:, 1:], frames[:, 1:] - frames[:, :-1]], 2).flatten(0, 1))
            return codes.view(b, n - 1, -1), attn.view(b, n - 1, *attn.shape[1:])
        first = self.encoder.convs[0][0]
        w, c = first.weight, first.out_channels
        bias = None  # the deploy form's (its BatchNorm folded in) rides on the frame's own half: no pass of its own
        if first.bias is not None:
            bias = torch.cat([first.bias, first.bias.new_zeros(c)])
        a = F.conv2d(
            frames.flatten(0, 1).contiguous(memory_format=torch.channels_last),
            torch.cat([w[:, :3] + w[:, 3:], -w[:, 3:]]) * scale,
            bias,
            first.stride,
            first.padding,
        )
        return self._from_first_level(a.view(b, n, *a.shape[1:]))

    def _from_first_level(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each frame's first conv alone (B, N, 2c, h, w), [W_now + W_change; −W_change] → codes (B, N − 1, D) and
        attention of frames 1 … N − 1."""
        b, n, c = a.shape[0], a.shape[1], a.shape[2] // 2
        x = a[:, 1:, :c] + a[:, :-1, c:]
        first = self.encoder.convs[0]
        codes, attn = self.encoder.read(self.encoder.convs[1:](first[1:](x.flatten(0, 1))))
        return codes.view(b, n - 1, -1), attn.view(b, n - 1, *attn.shape[1:])

    def reads_yuv420(self) -> bool:
        """Whether `encode_yuv420` can read the decoder's YUV 4:2:0 frames: a first level that is a patch conv at an
        even stride over unpooled frames, so each patch holds whole chroma samples (each over 2×2 pixels)."""
        first = self.encoder.convs[0][0]
        s = first.stride[0]
        patch = first.kernel_size == first.stride == (s, s) and first.padding == (0, 0)
        return self.pool_size == 1 and patch and s % 2 == 0

    @torch.no_grad()
    def yuv420_first_level(self, scale: float = 1.0) -> Yuv420Level:
        """The per-frame first conv of `encode_pooled` (weights × `scale`) for YUV 4:2:0 frames (`reads_yuv420`
        heads), as a matrix over `yuv420_patches`' bytes.

        A patch conv is linear in its pixels, and RGB = M·(YUV − zero) per pixel, so the RGB weights times M weigh
        Y per pixel and, each chroma sample standing for 2×2 pixels, U and V per sample (the 2×2 pixel weights
        summed); M·zero becomes bias. It is the head on the RGB frame whose chroma is each sample repeated over its
        2×2 pixels, unclipped."""
        if not self.reads_yuv420():
            raise ValueError("this event head's first level cannot read YUV 4:2:0 frames")
        first = self.encoder.convs[0][0]
        w, c, s = first.weight, first.out_channels, first.stride[0]
        pair = torch.cat([w[:, :3] + w[:, 3:], -w[:, 3:]]) * scale  # (2c, 3, s, s), as encode_pooled convolves
        per_plane = torch.einsum("okyx,kp->opyx", pair, torch.tensor(BT601_LIMITED, dtype=w.dtype))
        chroma = per_plane[:, 1:].unflatten(2, (s // 2, 2)).unflatten(4, (s // 2, 2)).sum((3, 5))  # (2c, U/V, y, x)
        bias = -(per_plane.sum((2, 3)) @ torch.tensor(YUV_ZERO, dtype=w.dtype))
        if first.bias is not None:
            bias = bias + torch.cat([first.bias, first.bias.new_zeros(c)])
        # luma (y, x), then chroma (y, x, U/V): the patch's bytes
        weight = torch.cat([per_plane[:, 0].flatten(1), chroma.permute(0, 2, 3, 1).flatten(1)], 1)
        return Yuv420Level(weight.t().contiguous(), bias, s)

    def encode_yuv420(self, planes: torch.Tensor, level: Yuv420Level) -> tuple[torch.Tensor, torch.Tensor]:
        """`encode_frames` of frames given as YUV 4:2:0, (B, N + 1, 3H/2, W) uint8 in NV12's layout (edgeav.yuv: Y's
        H rows, then H/2 rows of W/2 (U, V) pairs) → codes and attention of frames 1 … N. `level`:
        `yuv420_first_level`, made once."""
        b, n = planes.shape[:2]
        patches = yuv420_patches(planes.flatten(0, 1), level.stride)
        a = torch.addmm(level.bias, patches.flatten(0, 2).float(), level.weight)
        # (B·N·h·w, 2c) is the first level's map channels-last, the layout the next convs read fastest
        a = a.view(*patches.shape[:3], -1).permute(0, 3, 1, 2)
        return self._from_first_level(a.view(b, n, *a.shape[1:]))

    def from_codes(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """codes (B, length, D) → onset logit (B,) of the frame `before` into them and its L2-normalized
        embedding (B, E)."""
        h = codes + self.temporal(codes.transpose(1, 2)).transpose(1, 2)
        h = self.trunk(h.flatten(1))
        e = self.embed(h)
        return self.onset(h)[:, 0], e / e.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """frames (B, length + 1, 3, H, W) → (onset logit, embedding, attention (B, length, h, w))."""
        codes, attn = self.encode_frames(frames)
        logit, emb = self.from_codes(codes)
        return logit, emb, attn
