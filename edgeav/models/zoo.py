"""Registered configurations (timm style). Shipped weights live in edgeav/assets/models; `student` is the default
(edgeav.defaults.DEFAULT_MODEL)."""

from __future__ import annotations

from edgeav.models.av import AVConfig
from edgeav.models.registry import register_model


@register_model
def teacher() -> AVConfig:
    """Attention teacher: frozen ImageNet EfficientNet-Lite0 trunk (strides 8/16/32), 2-frame stack, audio conv
    stack."""
    return AVConfig(name="teacher")


@register_model
def teacher_baseline() -> AVConfig:
    """The research's baseline: the same backbones, pooled last stage, no attention."""
    return AVConfig(name="teacher_baseline", attention=False)


@register_model
def teacher_1frame() -> AVConfig:
    """One frame per window, as in the paper."""
    return AVConfig(name="teacher_1frame", visual_frames=1, frame_offsets=(0.2,))


@register_model
def teacher_paper() -> AVConfig:
    """The paper's scale for GPU users, after the research's released encoders: VGG-style stacks trained from scratch
    on one 224² frame (2 convs per stage, attention on the 224², 112² and 56² maps, g from a dense conv over the
    last 14² map: ~23 GMAC) and the 64×100 log-mel (attention on the 64×100, 32×50 and 16×25 maps); ~45M
    parameters in all. Far too slow for this CPU; see the README."""
    return AVConfig(
        name="teacher_paper",
        visual_backbone="paper_vgg",
        visual_widths=(64, 128, 128, 256, 512, 512),
        visual_convs=(2, 2, 2, 2, 2, 2),
        visual_pools=(1, 1, 2, 2, 2, 2),
        visual_taps=(1, 2, 3),
        visual_frames=1,
        frame_offsets=(0.2,),
        frame_size=(224, 224),
        audio_backbone="paper_vgg",
        audio_widths=(64, 128, 256, 512, 512, 512, 512, 512),
        audio_convs=(2, 2, 3, 3, 3, 1, 1, 0),
        audio_pools=(1, 1, 1, 2, 2, (1, 2), 2, 2),
        audio_taps=(2, 3, 4),
        attn_dim=128,
        pretrained=False,
    )


@register_model
def tiny() -> AVConfig:
    """A few-thousand-parameter model for tests."""
    return AVConfig(
        name="tiny",
        visual_backbone="convstack",
        visual_widths=(4, 8, 8, 16),
        audio_widths=(4, 8, 8, 16),
        frame_size=(64, 48),
        attn_dim=16,
        embed_dim=16,
        pretrained=False,
    )


@register_model
def student() -> AVConfig:
    """Default student (`edgeav run` uses it), re-parameterizable for INT8 on CPUs: RepConv stages (3×3 + 1×1 +
    identity branches in training, one dense 3×3 conv each once deployed: edgeav.models.rep) after a 4×4 stride-4
    stem; the two frames enter as 6 channels [f0, f1 − f0]; embeds into the teacher's space. 23× fewer visual MACs
    than `teacher` (deploy forms)."""
    return AVConfig(
        name="student",
        visual_backbone="rep",
        visual_widths=(16, 32, 64, 128),
        visual_fusion="early",
        blocks_per_stage=1,
        stem=(4, 4),
        audio_backbone="mobile",
        audio_widths=(16, 32, 64, 128),
        attn_dim=64,
        pretrained=False,
    )


@register_model
def student_mobile() -> AVConfig:
    """The depthwise-separable student: mobile encoders embedding into the
    teacher's space; the two frames enter as 6 channels [f0, f1 − f0] (one backbone pass). 31× fewer visual MACs
    than `teacher` (deploy forms), but depthwise convs run slower in INT8 than in FP32 on CPUs without VNNI."""
    return AVConfig(
        name="student_mobile",
        visual_backbone="mobile",
        visual_widths=(8, 16, 32, 64, 128),
        visual_fusion="early",
        audio_backbone="mobile",
        audio_widths=(16, 32, 64, 128),
        attn_dim=64,
        pretrained=False,
    )


@register_model
def student_small() -> AVConfig:
    """The smallest student: 64×48 frames, one block per stage; 180× fewer visual MACs than `teacher` (deploy forms)."""
    return AVConfig(
        name="student_small",
        visual_backbone="mobile",
        visual_widths=(8, 16, 32, 64, 128),
        visual_fusion="early",
        frame_size=(64, 48),
        audio_backbone="mobile",
        audio_widths=(8, 16, 32, 64),
        blocks_per_stage=1,
        attn_dim=32,
        pretrained=False,
    )
