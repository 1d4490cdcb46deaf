"""TensorRT backend: runs the engines listed in NAME.trt.json (written by `edgeav export --format engine`) with the
TensorRT 10/11 tensor API (set_input_shape / set_tensor_address / execute_async_v3) on CUDA tensors from torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeav.backends.base import EncoderBackend
from edgeav.errors import EdgeavError


class _Engine:
    def __init__(self, path: Path) -> None:
        import torch

        from edgeav.export.tensorrt import load_engine

        self.engine, self.meta = load_engine(path)
        self.ctx = self.engine.create_execution_context()
        self.torch = torch
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        import tensorrt as trt

        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.max_batch = int(self.meta["input"]["max_batch"])  # the optimization profile's bound

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """Outputs for a batch of any size: run in slices the engine's profile admits."""
        if len(x) <= self.max_batch:
            return self._run(x)
        parts = [self._run(x[i : i + self.max_batch]) for i in range(0, len(x), self.max_batch)]
        return [np.concatenate(outs) for outs in zip(*parts)]

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        torch = self.torch
        inp = torch.from_numpy(np.ascontiguousarray(x, np.float32)).cuda()
        self.ctx.set_input_shape(self.inputs[0], tuple(inp.shape))
        self.ctx.set_tensor_address(self.inputs[0], inp.data_ptr())
        outs = []
        for name in self.outputs:
            shape = tuple(self.ctx.get_tensor_shape(name))
            t = torch.empty(shape, dtype=torch.float32, device="cuda")
            self.ctx.set_tensor_address(name, t.data_ptr())
            outs.append(t)
        stream = torch.cuda.current_stream()
        if not self.ctx.execute_async_v3(stream.cuda_stream):
            raise EdgeavError("TensorRT execution failed", "rebuild the engine on this machine")
        stream.synchronize()
        return [o.cpu().numpy() for o in outs]


class TensorRTBackend(EncoderBackend):
    name = "tensorrt"

    def __init__(self, manifest: str | Path, precision: str | None = None) -> None:
        from edgeav.models import AVConfig
        from edgeav.models.store import read_card

        p = Path(manifest)
        if not p.exists():
            raise EdgeavError(f"engine manifest not found: {p}", "build it: edgeav export MODEL --format engine")
        side = json.loads(p.read_text())
        if precision is not None and precision != side["precision"]:
            raise EdgeavError(
                f"{p.name} holds {side['precision']} engines but {precision} was asked for",
                f"build engines from a {precision} export, or run with --precision {side['precision']}",
            )
        self.visual = _Engine(p.parent / side["engines"]["visual"])
        self.audio = _Engine(p.parent / side["engines"]["audio"])
        self.cfg = AVConfig.from_json(side["model"])
        self.card = read_card(side["model"], p.name)
        self.model_id = side["source_weights_sha1"][:16]
        self.precision = side["precision"]
        if "events_frame" in side["engines"]:
            from edgeav.events import EventSpec

            self.events_frame = _Engine(p.parent / side["engines"]["events_frame"])
            self.events_score = _Engine(p.parent / side["engines"]["events_score"])
            before, after = self.cfg.event_context
            self.event_spec = EventSpec(self.cfg.event_fps, before, after)

    def encode_preprocessed(self, x: np.ndarray, return_attention: bool = False) -> Any:
        out = self.visual(x)
        return (out[0], out[1:]) if return_attention else out[0]

    def encode_audio(self, mels: np.ndarray) -> np.ndarray:
        return self.audio(mels)[0]

    def encode_event_frames(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from edgeav.events import frame_pairs

        codes, attn = self.events_frame(frame_pairs(frames))
        return codes, attn

    def score_events(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        onset, emb = self.events_score(codes)
        return onset, emb
