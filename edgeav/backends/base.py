"""What every backend shares: uint8 frame stacks are preprocessed the same way before the backend's own encoder."""
from __future__ import annotations

import numpy as np

from edgeav.frontends import preprocess_frames


class EncoderBackend:
    """Subclasses set `name`, `cfg`, `model_id`, `precision` and implement `encode_preprocessed`, `encode_audio`."""

    @staticmethod
    def preprocess(stacks: np.ndarray) -> np.ndarray:
        return preprocess_frames(stacks)

    def encode_visual(self, stacks: np.ndarray, return_attention: bool = False):
        return self.encode_preprocessed(self.preprocess(stacks), return_attention)
