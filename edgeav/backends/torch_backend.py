"""PyTorch backend (CPU, or CUDA where present)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from edgeav.atomic import sha1_file
from edgeav.backends.base import EncoderBackend
from edgeav.errors import EdgeavError
from edgeav.models import load_model
from edgeav.models.events import pooled_tensor
from edgeav.models.rep import deploy_form
from edgeav.models.store import audio_sha1, resolve_model_path


class TorchBackend(EncoderBackend):
    name = "torch"

    def __init__(self, model: str, precision: str = "fp32", threads: int | None = None) -> None:
        if precision != "fp32":
            raise EdgeavError(
                f"precision {precision!r} is not available with the torch backend on CPU",
                "use --precision fp32 here; INT8/FP16 run through the ONNX/TensorRT backends",
            )
        if threads:
            torch.set_num_threads(threads)
        self.trained = load_model(model)
        self.model = deploy_form(self.trained)  # folded: the function trained, in fewer ops per call
        self.cfg, self.card = self.model.cfg, self.trained.card
        self.precision = precision
        path = resolve_model_path(model)
        self.weights_sha1 = sha1_file(path)
        self.model_id = self.weights_sha1[:16]  # same as an export's source_weights_sha1: banks are shared
        self.model_path = path  # for size reports
        self.events = getattr(self.model, "events", None)
        self.event_spec = self.events.spec if self.events is not None else None
        # a head whose first level reads the decoder's YUV 4:2:0 planes: a file's frames need no RGB conversion
        reads = self.events is not None and self.events.reads_yuv420()
        self._yuv420_level = self.events.yuv420_first_level(1 / 255) if reads else None

    @property
    def reads_yuv420(self) -> bool:
        return self._yuv420_level is not None

    @functools.cached_property
    def audio_sha1(self) -> str:
        """What a bank indexed by this model depends on; hashed only when a student's bank check asks."""
        return audio_sha1(self.trained)  # of the weights as trained, as banks record them

    @torch.no_grad()
    def encode_preprocessed(self, x: np.ndarray, return_attention: bool = False) -> Any:
        x = torch.from_numpy(x)
        if return_attention:
            v, attn = self.model.encode_visual(x, return_attention=True)
            return v.numpy(), [a.numpy() for a in attn]
        return self.model.encode_visual(x).numpy()

    @torch.no_grad()
    def encode_audio(self, mels: np.ndarray) -> np.ndarray:
        return self.model.encode_audio(torch.from_numpy(np.ascontiguousarray(mels, np.float32))).numpy()

    @torch.no_grad()
    def encode_event_frames(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RGB frames (N + 1, H, W, 3), or YUV 4:2:0 planes (N + 1, 3H/2, W) where `reads_yuv420`."""
        if frames.ndim == 3:
            if self._yuv420_level is None:
                raise EdgeavError("this model's event head reads RGB frames, not YUV planes", "decode to RGB")
            codes, attn = self.events.encode_yuv420(torch.from_numpy(frames[None]), self._yuv420_level)
            return codes[0].numpy(), attn[0].numpy()
        # pixel-scale frames: the 1/255 rides on the first conv's weights (a twentieth of the head's time per frame)
        pixels = pooled_tensor(frames[None], self.events.pool_size, unit=False)
        codes, attn = self.events.encode_pooled(pixels, scale=1 / 255)
        return codes[0].numpy(), attn[0].numpy()

    @torch.no_grad()
    def score_events(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logit, emb = self.events.from_codes(torch.from_numpy(np.ascontiguousarray(codes, np.float32)))
        return logit.numpy(), emb.numpy()
