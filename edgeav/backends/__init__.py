"""Backends behind one interface (edgeav.backends.base.Backend): `preprocess(stacks)`, `encode_visual(stacks uint8
(N,T,H,W,3)) -> (N,D)`, `encode_preprocessed(x)`, `encode_audio(mels (N,100,64)) -> (N,D)`, plus `cfg`, `card`,
`model_id`, `name` and `precision`.

Chosen by `--backend` or, with `auto`, by the model's file: `.onnx.json` → ONNX Runtime, `.trt.json` → TensorRT,
anything else (registry name, .safetensors) → PyTorch. A precision the backend cannot deliver is an error."""

from __future__ import annotations

import sys
from collections.abc import Callable

from edgeav.backends.base import Backend
from edgeav.errors import EdgeavError

BACKENDS = ("auto", "torch", "onnx", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")


def load_backend(
    model: str,
    backend: str = "auto",
    precision: str | None = None,
    threads: int | None = None,
    exact_qdq: bool | None = None,
    say: Callable[[str], None] | None = None,
) -> Backend:
    """The backend that runs `model`. `precision` None = the model file's own (fp32 for a PyTorch model); an export
    whose precision differs from an explicit one is an error, never a silent fallback. `backend` onnx or tensorrt
    with a PyTorch model runs its export for that backend, made on first use (edgeav.export.auto; `say` reports
    it). `exact_qdq` (ONNX only): see edgeav.backends.onnx_backend; None = its default for the file."""
    if backend not in BACKENDS:
        raise EdgeavError(f"unknown backend {backend!r}", f"use one of {', '.join(BACKENDS)}")
    if precision is not None and precision not in PRECISIONS:
        raise EdgeavError(f"unknown precision {precision!r}", f"use one of {', '.join(PRECISIONS)}")
    kind = "onnx" if model.endswith(".onnx.json") else "tensorrt" if model.endswith(".trt.json") else "torch"
    if backend == "auto":
        backend = kind
    if backend != kind:
        if kind != "torch":
            raise EdgeavError(
                f"backend {backend} cannot run {model!r} (a {kind} export)",
                f"run it with --backend {kind}, or give the PyTorch model",
            )
        from edgeav.export.auto import exported

        model = exported(model, backend, precision, say or (lambda m: print(m, file=sys.stderr)))
    if backend == "onnx":
        from edgeav.backends.onnx_backend import OnnxBackend

        return OnnxBackend(model, precision, threads, exact_qdq=exact_qdq)
    if backend == "tensorrt":
        from edgeav.backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(model, precision)
    from edgeav.backends.torch_backend import TorchBackend

    return TorchBackend(model, precision=precision or "fp32", threads=threads)
