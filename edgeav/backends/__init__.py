"""Backends behind one interface: `preprocess(stacks)`, `encode_visual(stacks uint8 (N,T,H,W,3)) -> (N,D)`,
`encode_preprocessed(x)`, `encode_audio(mels (N,100,64)) -> (N,D)`, plus `cfg` and `model_id`.

Chosen by `--backend` or, with `auto`, by the model's file: `.onnx.json` → ONNX Runtime, `.trt.json` → TensorRT,
anything else (registry name, .safetensors) → PyTorch. A precision the backend cannot deliver is an error."""
from __future__ import annotations

from edgeav.errors import EdgeavError

BACKENDS = ("auto", "torch", "onnx", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")


def load_backend(model: str, backend: str = "auto", precision: str = "fp32", threads: int | None = None,
                 exact_qdq: bool | None = None):
    """`exact_qdq` (ONNX only): see edgeav.backends.onnx_backend; None = its default for the file."""
    if backend not in BACKENDS:
        raise EdgeavError(f"unknown backend {backend!r}", f"use one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise EdgeavError(f"unknown precision {precision!r}", f"use one of {', '.join(PRECISIONS)}")
    kind = "onnx" if model.endswith(".onnx.json") else "tensorrt" if model.endswith(".trt.json") else "torch"
    if backend == "auto":
        backend = kind
    if backend != kind:
        fmt = {"onnx": "onnx (or int8)", "tensorrt": "engine"}.get(backend, "")
        raise EdgeavError(f"backend {backend} cannot run {model!r}",
                          f"export it first: edgeav export {model} --format {fmt}" if fmt else
                          "give a registry name or .safetensors for the torch backend")
    if backend == "onnx":
        from edgeav.backends.onnx_backend import OnnxBackend

        return OnnxBackend(model, precision, threads, exact_qdq=exact_qdq)
    if backend == "tensorrt":
        from edgeav.backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(model, precision)
    from edgeav.backends.torch_backend import TorchBackend

    return TorchBackend(model, precision=precision, threads=threads)
