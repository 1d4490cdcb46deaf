"""Exports made on first use: `edgeav run --backend onnx|tensorrt` with a PyTorch model (a registry name or a
.safetensors file) runs the export that backend needs, made once into the cache folder and reused while the
model's weights and the exporter's graph form are unchanged (as Ultralytics does)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from edgeav.errors import EdgeavError


def export_format(backend: str, precision: str, gpu: bool) -> tuple[str, str]:
    """(edgeav export's --format, --engine-from) for a backend and precision. INT8 for ONNX Runtime on a CPU is
    the form made for its int8 kernels (int8-cpu); with a GPU provider, TensorRT's Q/DQ form (int8)."""
    if backend == "onnx":
        fmt = {"fp32": "onnx", "fp16": "fp16", "int8": "int8" if gpu else "int8-cpu"}.get(precision)
        if fmt is None:
            raise EdgeavError(f"unknown precision {precision!r}", "use fp32, fp16 or int8")
        return fmt, "int8"
    if precision not in ("int8", "fp16"):
        raise EdgeavError(
            f"TensorRT engines are built in int8 or fp16, not {precision}", "run with --precision int8 (or fp16)"
        )
    return "engine", precision


def _current(sidecar: Path, weights_sha1: str) -> bool:
    from edgeav.export.onnx_export import GRAPH_FORM

    try:
        side = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return False
    return side.get("source_weights_sha1") == weights_sha1 and side.get("graph_form") == GRAPH_FORM


def exported(model: str, backend: str, precision: str | None, say: Callable[[str], None]) -> str:
    """The sidecar of `model` exported for `backend` at `precision` (None: fp32 for ONNX, int8 for TensorRT),
    exporting it first when the cache has no current one."""
    from edgeav.atomic import sha1_file
    from edgeav.defaults import cache_dir
    from edgeav.models.store import resolve_model_path

    path = resolve_model_path(model)
    if not path.exists():
        raise EdgeavError(f"model weights not found: {path}", "give a registry name or a .safetensors path")
    precision = precision or ("fp32" if backend == "onnx" else "int8")
    gpu = False
    if backend == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            raise EdgeavError("the onnx backend needs onnxruntime", "pip install 'edgeav[onnx]'") from None
        gpu = "CUDAExecutionProvider" in ort.get_available_providers()
    fmt, engine_from = export_format(backend, precision, gpu)
    sha = sha1_file(path)
    folder = cache_dir() / "exports" / f"{path.stem}-{sha[:16]}"
    stem = folder / f"{path.stem}-{fmt if fmt != 'engine' else 'engine-' + engine_from}"
    sidecar = stem.with_suffix(".trt.json" if fmt == "engine" else ".onnx.json")
    if _current(sidecar, sha):
        return str(sidecar)
    from edgeav.export.formats import export

    say(
        f"edgeav: exporting {model} for {backend} {precision} (--format {fmt}) into {folder}: first use, reused "
        f"while the weights are unchanged"
    )
    export(str(path), fmt, str(stem), engine_from=engine_from)
    return str(sidecar)
