"""ONNX Runtime backend over exported encoders (edgeav export): CPU, or CUDA/TensorRT execution providers.

TensorRT's INT8 form (symmetric Q/DQ) on ONNX Runtime's CPU provider runs with graph optimizations off: every
DequantizeLinear → float op is then computed exactly as written, which is what TensorRT computes with int32
accumulation. ORT's fused int8 kernels on x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) add pairs of u8×s8
products in 16 bits, which saturate: measured on the depthwise student's (student_mobile) visual encoder with
soundtrack targets, they cost half its top-1 (0.116 against 0.206 exact). The CPU form (`int8-cpu`) is the one made
for ONNX Runtime's kernels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeav.backends.base import EncoderBackend
from edgeav.errors import EdgeavError

# ONNX Runtime's QDQ propagation moves each backbone output's DequantizeLinear past the float head's Reshape and
# Transpose, toward ops it could quantize. The CPU form keeps the head in float, so nothing is gained: each level's
# one DequantizeLinear becomes two (one per use) and the Transpose no longer fuses into the head's MatMul (40 nodes
# instead of 34). Off for the CPU form: student's visual INT8, 2 threads, batch 1, 0.064 → 0.058 ms
# (research.int8_scope measures it).
CPU_FORM_DISABLED_OPTIMIZERS = ["QDQPropagationTransformer"]


def ort_session(
    path: str | Path,
    threads: int | None = None,
    providers: list[str] | None = None,
    exact_qdq: bool = False,
    cpu_form: bool = False,
    save_optimized: str | Path | None = None,
) -> Any:
    """An ONNX Runtime session the way edgeav runs a graph: `exact_qdq` computes Q/DQ graphs as written
    (optimizations off); `cpu_form` is for graphs quantized for ONNX Runtime's CPU kernels (no effect on float
    graphs); `save_optimized` writes the graph ONNX Runtime actually runs (for tests and inspection)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    if exact_qdq:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if save_optimized:
        opts.optimized_model_filepath = str(save_optimized)
    return ort.InferenceSession(
        str(path),
        opts,
        providers=providers or ["CPUExecutionProvider"],
        disabled_optimizers=CPU_FORM_DISABLED_OPTIMIZERS if cpu_form else None,
    )


class OnnxBackend(EncoderBackend):
    name = "onnx"

    def __init__(
        self,
        sidecar: str | Path,
        precision: str | None = None,
        threads: int | None = None,
        providers: list[str] | None = None,
        exact_qdq: bool | None = None,
    ) -> None:
        """`exact_qdq`: run Q/DQ graphs exactly (optimizations off); None = for TensorRT's form on the CPU only."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise EdgeavError("the onnx backend needs onnxruntime", "pip install 'edgeav[onnx]'") from None
        from edgeav.models import AVConfig
        from edgeav.models.store import read_card

        p = Path(sidecar)
        if not p.exists():
            raise EdgeavError(f"exported model not found: {p}", "export it: edgeav export MODEL --format onnx|int8")
        try:
            side = json.loads(p.read_text())
            assert side.get("format") == "edgeav-onnx/1"
        except Exception:
            raise EdgeavError(
                f"{p} is not an edgeav ONNX sidecar", "give the .onnx.json written by edgeav export"
            ) from None
        have = side["precision"]
        if precision is not None and precision != have:
            raise EdgeavError(
                f"{p.name} holds a {have} model but {precision} was asked for",
                f"export it with --format {precision}, or run with --precision {have}",
            )
        avail = ort.get_available_providers()
        providers = providers or [x for x in ("CUDAExecutionProvider",) if x in avail] + ["CPUExecutionProvider"]
        if have == "fp16" and providers == ["CPUExecutionProvider"]:
            raise EdgeavError(
                "FP16 needs a GPU execution provider (CUDA/TensorRT); ONNX Runtime on CPU would run it "
                "through casts at FP32 speed",
                "use --precision int8 or fp32 on CPU",
            )
        if exact_qdq is None:
            exact_qdq = side.get("quant_target") == "tensorrt" and providers == ["CPUExecutionProvider"]
        cpu_form = side.get("quant_target") == "cpu"
        graphs = [g for g in ("visual", "audio", "events_frame", "events_score") if g in side["files"]]
        try:
            sessions = {
                g: ort_session(p.parent / side["files"][g], threads, providers, bool(exact_qdq), cpu_form)
                for g in graphs
            }
        except Exception as e:
            raise EdgeavError(
                f"cannot load the ONNX encoders of {p}: {' '.join(str(e).split())[:160]}", "re-export the model"
            ) from None
        self.visual, self.audio = sessions["visual"], sessions["audio"]
        self.events_frame, self.events_score = sessions.get("events_frame"), sessions.get("events_score")
        self.side, self.precision, self.providers, self.exact_qdq = side, have, providers, bool(exact_qdq)
        self.cfg = AVConfig.from_json(side["model"])
        if self.events_frame is not None:
            from edgeav.events import EventSpec

            before, after = self.cfg.event_context
            self.event_spec = EventSpec(self.cfg.event_fps, before, after)
        self.card = read_card(side["model"], p.name)
        self.model_id = side["source_weights_sha1"][:16]  # same weights → same embedding space as the torch model

    def encode_preprocessed(self, x: np.ndarray, return_attention: bool = False) -> Any:
        out = self.visual.run(None, {"frames": np.ascontiguousarray(x, np.float32)})
        return (out[0], out[1:]) if return_attention else out[0]

    def encode_audio(self, mels: np.ndarray) -> np.ndarray:
        return self.audio.run(None, {"mel": np.ascontiguousarray(mels, np.float32)})[0]

    def encode_event_frames(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from edgeav.events import frame_pairs

        codes, attn = self.events_frame.run(None, {"frame_pair": frame_pairs(frames)})
        return codes, attn

    def score_events(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        onset, emb = self.events_score.run(None, {"codes": np.ascontiguousarray(codes, np.float32)})
        return onset, emb
