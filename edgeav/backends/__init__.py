"""Backends behind one interface: `encode_visual(stacks uint8 (N,T,H,W,3)) -> (N,D)`, `encode_audio(mels) -> (N,D)`."""
from __future__ import annotations

from edgeav.errors import EdgeavError

BACKENDS = ("auto", "torch", "onnx", "tensorrt")


def load_backend(model: str, backend: str = "auto", precision: str = "fp32", threads: int | None = None):
    if backend not in BACKENDS:
        raise EdgeavError(f"unknown backend {backend!r}", f"use one of {', '.join(BACKENDS)}")
    if backend in ("onnx", "tensorrt"):
        raise EdgeavError(f"backend {backend!r} is not available in this version",
                          "use --backend torch (ONNX Runtime and TensorRT export are tracked in the edge issue)")
    from edgeav.backends.torch_backend import TorchBackend

    return TorchBackend(model, precision=precision, threads=threads)
