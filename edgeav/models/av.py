"""The audio-visual model: visual encoder Ev, audio encoder Ea, a projector shared by both, L2-normalized outputs.

Ev: backbone intermediates of each frame in a short stack; frame 0 and the change to the last frame are fused
per resolution (channels [f0, f_last - f0]) and pooled by attention (or plain pooling for the baseline).
Ea: the same head over a conv stack on the 1 s log-mel (1 × 64 mels × 100 frames).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from edgeav.models.attention import MultiResolutionHead
from edgeav.models.backbones import ConvStack, EfficientNetLite0Trunk, MobileStack, PaperVGG
from edgeav.models.card import ModelCard
from edgeav.models.rep import RepStack


@dataclass
class AVConfig:
    """A model's architecture. Every field is data: saved beside the weights as JSON."""

    name: str = "teacher"
    visual_backbone: str = "lite0"  # lite0 (ImageNet, frozen) | convstack | mobile | rep (trained from scratch)
    visual_widths: tuple[int, ...] = (32, 64, 128, 256)  # convstack / mobile stage widths
    visual_frames: int = 2  # 1 = one frame as in the paper; 2 = frame + change across the window
    visual_fusion: str = "late"  # late: [f0, f_last - f0] per feature resolution; early: as 6 input channels
    frame_size: tuple[int, int] = (128, 96)  # (width, height)
    frame_offsets: tuple[float, ...] = (0.2, 0.4)  # seconds after window start of each stacked frame
    visual_tune_levels: int = 0  # lite0: the trunk's last N tapped levels learn (1 = its stride-32
    # stage), recomputed from the fixed map before them; 0 = all frozen
    attention: bool = True
    attn_dim: int = 128
    embed_dim: int = 128
    audio_backbone: str = "convstack"  # convstack | mobile
    audio_widths: tuple[int, ...] = (16, 32, 64, 128)
    blocks_per_stage: int = 2  # mobile / rep backbones: blocks per stage
    stem: tuple[int, int] = (4, 4)  # rep backbones: the first conv's (kernel, stride)
    audio_convs_per_stage: int = 1  # 1 keeps a CPU training step ~3x cheaper than 2 (measured)
    # paper_vgg backbones (the research's released encoders): convs per stage (0 = a pool-only stage), the max-pool
    # before each stage (k for k×k, [kh, kw], 1 = none) and the attended stages; g comes from the last stage
    visual_convs: tuple[int, ...] = ()
    visual_pools: tuple = ()
    visual_taps: tuple[int, ...] = ()
    audio_convs: tuple[int, ...] = ()
    audio_pools: tuple = ()
    audio_taps: tuple[int, ...] = ()
    n_mels: int = 64
    audio_frames: int = 100
    pretrained: bool = True  # load ImageNet weights into a lite0 trunk
    center_weight: float = 0.0  # visual embeddings are re-normalized after subtracting this × the mean
    # embedding of training footage (buffer visual_center): hubness reduction,
    # so sounds that sit near every frame stop topping every list (0 = off)
    event_widths: tuple[int, ...] = ()  # the event head's conv widths (edgeav.models.events); () = no event head
    event_dim: int = 64  # its per-frame code and temporal width
    event_context: tuple[int, int] = (4, 2)  # frames read before and after the candidate onset frame
    event_pool: int = 1  # the frame is average-pooled by this before the event head's convs
    event_fps: float = 25.0  # the event head's frame rate
    event_stem: int = 1  # > 1: the event head's first conv is a patch conv of this size and stride (else 3×3, 2)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> AVConfig:
        d = dict(d)
        for k in (
            "visual_widths",
            "frame_size",
            "stem",
            "frame_offsets",
            "audio_widths",
            "visual_convs",
            "visual_pools",
            "visual_taps",
            "audio_convs",
            "audio_pools",
            "audio_taps",
            "event_widths",
            "event_context",
        ):
            if k in d:
                d[k] = tuple(tuple(x) if isinstance(x, list) else x for x in d[k])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """F.normalize(x, dim=-1), written so the exported graph has no Shape/Expand (ReduceL2, Clip, Div)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


def _global_map(backbone: nn.Module, size: tuple[int, int], mult: int = 1) -> tuple[int, int, int] | None:
    """(C, H, W) of the map a paper_vgg backbone computes g from (fixed by the input size); None for the others."""
    if not isinstance(backbone, PaperVGG):
        return None
    return (backbone.global_channels * mult, *backbone.map_size(size, len(backbone.stages) - 1))


class VisualEncoder(nn.Module):
    def __init__(self, cfg: AVConfig) -> None:
        super().__init__()
        self.n_frames = cfg.visual_frames
        self.early = cfg.visual_fusion == "early" and cfg.visual_frames > 1
        self.frame_hw = (cfg.frame_size[1], cfg.frame_size[0])
        self.difference_folded = False  # set by fold_frame_difference (deploy form only)
        in_ch = 6 if self.early else 3
        if cfg.visual_backbone == "lite0":
            if self.early:
                raise ValueError("the pretrained lite0 trunk takes 3-channel frames: use visual_fusion='late'")
            self.backbone = EfficientNetLite0Trunk(
                pretrained=cfg.pretrained, frozen=True, tune_levels=cfg.visual_tune_levels
            )
        elif cfg.visual_backbone == "convstack":
            self.backbone = ConvStack(in_ch, cfg.visual_widths, taps=(1, 2, 3))
        elif cfg.visual_backbone == "mobile":
            n = len(cfg.visual_widths)
            self.backbone = MobileStack(
                in_ch, cfg.visual_widths, taps=(n - 3, n - 2, n - 1), blocks_per_stage=cfg.blocks_per_stage
            )
        elif cfg.visual_backbone == "rep":
            n = len(cfg.visual_widths)
            self.backbone = RepStack(
                in_ch,
                cfg.visual_widths,
                taps=(n - 3, n - 2, n - 1),
                blocks_per_stage=cfg.blocks_per_stage,
                stem_kernel=cfg.stem[0],
                stem_stride=cfg.stem[1],
            )
        elif cfg.visual_backbone == "paper_vgg":
            self.backbone = PaperVGG(in_ch, cfg.visual_widths, cfg.visual_convs, cfg.visual_pools, cfg.visual_taps)
        else:
            raise ValueError(f"unknown visual backbone {cfg.visual_backbone}")
        mult = 2 if cfg.visual_frames > 1 and not self.early else 1
        self.head = MultiResolutionHead(
            [c * mult for c in self.backbone.channels],
            cfg.attn_dim,
            cfg.embed_dim,
            cfg.attention,
            _global_map(self.backbone, (cfg.frame_size[1], cfg.frame_size[0]), mult),
        )

    def early_input(self, frames: torch.Tensor) -> torch.Tensor:
        """Early fusion: the change across the window enters as input channels [f0, f_last − f0] (one backbone pass,
        not T). Folded into the first conv (deploy form) the stack enters as it is, reshaped with the model's own
        frame size: constant shapes keep the exported graph free of shape arithmetic."""
        if self.difference_folded:
            x = frames if self.n_frames == 2 else frames[:, [0, -1]]
            return x.reshape(-1, 6, *self.frame_hw)
        return torch.cat([frames[:, 0], frames[:, -1] - frames[:, 0]], dim=1)

    @torch.no_grad()
    def fold_frame_difference(self) -> None:
        """Fold [f0, f1 − f0] into the first conv: W·[f0, f1 − f0] = [W0 − W1, W1]·[f0, f1] (exact: conv is linear
        and zero padding commutes with it). For deploy copies (edgeav.models.rep.deploy_form)."""
        if not self.early or self.difference_folded:
            return
        first = next(m for m in self.backbone.modules() if isinstance(m, nn.Conv2d))
        w0, w1 = first.weight[:, :3].clone(), first.weight[:, 3:].clone()
        first.weight.copy_(torch.cat([w0 - w1, w1], dim=1))
        self.difference_folded = True

    def backbone_features(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """frames (B, T, 3, H, W) → per resolution (B, T, C, h, w); with early fusion T = 1."""
        if self.early:
            frames = self.early_input(frames)[:, None]
        b, t = frames.shape[:2]
        feats = self.backbone.forward_intermediates(frames.flatten(0, 1))
        return [f.view(b, t, *f.shape[1:]) for f in feats]

    def fuse(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.n_frames == 1 or self.early:
            return [f[:, 0] for f in feats]
        return [torch.cat([f[:, 0], f[:, -1] - f[:, 0]], dim=1) for f in feats]

    def forward_features(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The embedding from cached backbone maps (B, T, C, h, w) per level; a partly tuned trunk recomputes its
        tuned levels from them first."""
        if getattr(self.backbone, "tune_levels", 0):
            b, t = feats[0].shape[:2]
            feats = [f.view(b, t, *f.shape[1:]) for f in self.backbone.refine([f.flatten(0, 1) for f in feats])]
        return self.head(self.fuse(feats))

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.early:  # no T axis to add and remove: fewer graph nodes when exported
            return self.head(self.backbone.forward_intermediates(self.early_input(frames)))
        return self.head(self.fuse(self.backbone_features(frames)))


class AudioEncoder(nn.Module):
    def __init__(self, cfg: AVConfig) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(1)  # learned input scaling of the log-mel
        if cfg.audio_backbone == "mobile":
            n = len(cfg.audio_widths)
            self.backbone = MobileStack(
                1, cfg.audio_widths, taps=(n - 3, n - 2, n - 1), blocks_per_stage=cfg.blocks_per_stage
            )
        elif cfg.audio_backbone == "convstack":
            self.backbone = ConvStack(1, cfg.audio_widths, taps=(1, 2, 3), convs_per_stage=cfg.audio_convs_per_stage)
        elif cfg.audio_backbone == "paper_vgg":
            self.backbone = PaperVGG(1, cfg.audio_widths, cfg.audio_convs, cfg.audio_pools, cfg.audio_taps)
        else:
            raise ValueError(f"unknown audio backbone {cfg.audio_backbone}")
        self.head = MultiResolutionHead(
            self.backbone.channels,
            cfg.attn_dim,
            cfg.embed_dim,
            cfg.attention,
            _global_map(self.backbone, (cfg.n_mels, cfg.audio_frames)),
        )

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """mel (B, frames, n_mels) as the front-end returns it."""
        x = self.norm(mel.transpose(1, 2).unsqueeze(1))
        return self.head(self.backbone.forward_intermediates(x))


class AVModel(nn.Module):
    def __init__(self, cfg: AVConfig, card: ModelCard | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.card = card or ModelCard()  # what the runtime knows beyond the architecture (edgeav.models.card)
        self.visual = VisualEncoder(cfg)
        self.audio = AudioEncoder(cfg)
        self.projector = nn.Linear(cfg.embed_dim, cfg.embed_dim)  # shared by both modalities
        if cfg.center_weight:  # only centered models carry the buffer, so older weight files load unchanged
            self.register_buffer("visual_center", torch.zeros(cfg.embed_dim))
        self.projector_folded = False  # deploy form: the heads already apply the projector
        if cfg.event_widths:  # its tensors are named events.*: banks (audio.*, projector.*) stay valid
            from edgeav.models.events import EventHead

            before, after = cfg.event_context
            self.events = EventHead(
                cfg.event_widths,
                cfg.event_dim,
                cfg.embed_dim,
                before,
                after,
                cfg.event_pool,
                cfg.event_fps,
                cfg.event_stem,
            )

    def project(self, z: torch.Tensor) -> torch.Tensor:
        return l2_normalize(z if self.projector_folded else self.projector(z))

    def project_visual(self, z: torch.Tensor) -> torch.Tensor:
        v = self.project(z)
        if self.cfg.center_weight:
            v = l2_normalize(v - self.cfg.center_weight * self.visual_center)
        return v

    def encode_visual(
        self, frames: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        z, attn = self.visual(frames)
        return (self.project_visual(z), attn) if return_attention else self.project_visual(z)

    def encode_visual_features(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.project_visual(self.visual.forward_features(feats)[0])

    def encode_audio(
        self, mel: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        z, attn = self.audio(mel)
        return (self.project(z), attn) if return_attention else self.project(z)

    def forward(self, frames: torch.Tensor, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_visual(frames), self.encode_audio(mel)
