"""The backend interface (`Backend`) and what every backend shares: uint8 frame stacks are preprocessed the same
way before the backend's own encoder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from edgeav.frontends import preprocess_frames

if TYPE_CHECKING:
    from edgeav.events import EventSpec
    from edgeav.models.av import AVConfig
    from edgeav.models.card import ModelCard


@runtime_checkable
class Backend(Protocol):
    """What the pipeline, the bank and the benchmarks use of a model, whatever runs it."""

    name: str
    """torch | onnx | tensorrt"""
    precision: str
    """fp32 | fp16 | int8: what the backend computes in."""
    cfg: AVConfig
    """The model's architecture (input sizes, frame offsets, embedding width)."""
    card: ModelCard
    """The model's card: its teacher and calibrated gates."""
    model_id: str
    """Identifies the embedding space: banks and verdicts made with one model_id serve it."""

    def preprocess(self, stacks: np.ndarray) -> np.ndarray: ...

    def encode_visual(self, stacks: np.ndarray, return_attention: bool = False) -> Any: ...

    def encode_preprocessed(self, x: np.ndarray, return_attention: bool = False) -> Any: ...

    def encode_audio(self, mels: np.ndarray) -> np.ndarray: ...


class EncoderBackend:
    """Base of the backends: subclasses set `name`, `cfg`, `card`, `model_id`, `precision` and implement
    `encode_preprocessed`, `encode_audio`; those that run an event head set `event_spec` and implement
    `encode_event_frames` and `score_events`."""

    event_spec: EventSpec | None = None
    """The event head's geometry; None: this model (or this form of it) has no event head."""
    reads_yuv420: bool = False
    """Whether `encode_event_frames` also takes YUV 4:2:0 planes (edgeav.yuv) for RGB frames."""

    def encode_event_frames(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """N + 1 consecutive uint8 frames (N + 1, H, W, 3) → event codes (N, D) and attention maps (N, h, w) of the
        last N (each read with the frame before it); where `reads_yuv420`, (N + 1, 3H/2, W) planes too."""
        raise NotImplementedError

    def score_events(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes (B, length, D) → onset logits (B,) and embeddings (B, E) of the frame `event_spec.before` into
        each."""
        raise NotImplementedError

    @staticmethod
    def preprocess(stacks: np.ndarray) -> np.ndarray:
        return preprocess_frames(stacks)

    def encode_visual(self, stacks: np.ndarray, return_attention: bool = False) -> Any:
        return self.encode_preprocessed(self.preprocess(stacks), return_attention)
