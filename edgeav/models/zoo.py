"""Registered configurations. `teacher` is the shipped default (weights in edgeav/assets/models)."""
from __future__ import annotations

from edgeav.models.av import AVConfig
from edgeav.models.registry import register_model


@register_model
def teacher() -> AVConfig:
    """Attention teacher: frozen ImageNet EfficientNet-Lite0 trunk (strides 8/16/32), 2-frame stack, audio conv stack."""
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
    """The paper's scale for GPU users: VGG-style stacks trained from scratch on 224² frames."""
    return AVConfig(name="teacher_paper", visual_backbone="convstack", visual_widths=(64, 128, 256, 512),
                    visual_frames=1, frame_offsets=(0.2,), frame_size=(224, 224), audio_widths=(64, 128, 256, 512), audio_convs_per_stage=2,
                    attn_dim=256, pretrained=False)


@register_model
def tiny() -> AVConfig:
    """A few-thousand-parameter model for tests."""
    return AVConfig(name="tiny", visual_backbone="convstack", visual_widths=(4, 8, 8, 16), audio_widths=(4, 8, 8, 16),
                    frame_size=(64, 48), attn_dim=16, embed_dim=16, pretrained=False)


@register_model
def student() -> AVConfig:
    """Default student (`edgeav run` uses it): mobile depthwise-separable encoders embedding into the teacher's space;
    the two frames enter as 6 channels [f0, f1 − f0] (one backbone pass). ~26× fewer visual MACs than `teacher`."""
    return AVConfig(name="student", visual_backbone="mobile", visual_widths=(8, 16, 32, 64, 128), visual_fusion="early",
                    audio_backbone="mobile", audio_widths=(16, 32, 64, 128), attn_dim=64, pretrained=False)


@register_model
def student_small() -> AVConfig:
    """The smallest student: 64×48 frames, one block per stage; ~160× fewer visual MACs than `teacher`."""
    return AVConfig(name="student_small", visual_backbone="mobile", visual_widths=(8, 16, 32, 64, 128),
                    visual_fusion="early", frame_size=(64, 48), audio_backbone="mobile", audio_widths=(8, 16, 32, 64),
                    blocks_per_stage=1, attn_dim=32, pretrained=False)
