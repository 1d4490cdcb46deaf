"""TensorRT engines from the (Q/DQ INT8 or FP16) ONNX encoders, with the TensorRT 10/11 Python API.

Networks are strongly typed: the precision comes from the graph (Q/DQ nodes, FP16 tensors), not from builder flags
(TensorRT 11 removed the INT8/FP16 flags and implicit INT8 calibration). Each engine gets a metadata JSON beside it
(TensorRT version, GPU name, compute capability, input specs); loading refuses an engine built elsewhere.
On Jetson, build on the device with JetPack's TensorRT (python3-libnvinfer): engines are not portable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeav.atomic import atomic_path, write_json
from edgeav.errors import EdgeavError


def _trt():
    try:
        import tensorrt as trt
    except ImportError:
        raise EdgeavError(
            "TensorRT is not installed on this machine",
            "on an NVIDIA host: pip install 'edgeav[tensorrt]'; on Jetson: JetPack's python3-libnvinfer",
        ) from None
    return trt


def device_info() -> dict:
    try:
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError
        major, minor = torch.cuda.get_device_capability(0)
        return {"gpu": torch.cuda.get_device_name(0), "compute_capability": f"{major}.{minor}"}
    except Exception:
        raise EdgeavError(
            "no CUDA GPU visible", "TensorRT engines build and run on NVIDIA GPUs (desktop or Jetson)"
        ) from None


def build_engine(
    onnx_path: str | Path,
    out: str | Path,
    input_name: str,
    opt_shape: tuple[int, ...],
    max_batch: int = 8,
    workspace_mb: int = 1024,
) -> dict:
    trt = _trt()
    dev = device_info()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EdgeavError(f"TensorRT cannot parse {onnx_path}: {errs[:200]}", "re-export with edgeav export")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    profile = builder.create_optimization_profile()
    rest = tuple(opt_shape[1:])
    profile.set_shape(input_name, (1, *rest), (opt_shape[0], *rest), (max_batch, *rest))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise EdgeavError(f"TensorRT failed to build an engine from {onnx_path}", "see the TensorRT log above")
    with atomic_path(out, suffix=".engine") as tmp:
        Path(tmp).write_bytes(bytes(engine))
    meta = {
        "tensorrt": trt.__version__,
        **dev,
        "input": {"name": input_name, "shape": list(opt_shape), "max_batch": max_batch},
        "onnx": Path(onnx_path).name,
    }
    write_json(Path(out).with_suffix(".engine.json"), meta)
    return meta


def check_engine_metadata(meta: dict, current: dict) -> None:
    """Refuse an engine built with another TensorRT or for another GPU (engines are not portable)."""
    for key in ("tensorrt", "compute_capability"):
        if meta.get(key) != current.get(key):
            raise EdgeavError(
                f"engine built for {key} {meta.get(key)} but this machine has {current.get(key)}",
                "rebuild the engine here: edgeav export MODEL --format engine",
            )


def load_engine(path: str | Path) -> Any:
    trt = _trt()
    p = Path(path)
    meta_path = p.with_suffix(".engine.json")
    if not meta_path.exists():
        raise EdgeavError(f"engine {p} has no metadata file {meta_path.name}", "rebuild it with edgeav export")
    meta = json.loads(meta_path.read_text())
    check_engine_metadata(meta, {"tensorrt": trt.__version__, **device_info()})
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(p.read_bytes())
    if engine is None:
        raise EdgeavError(f"cannot deserialize engine {p}", "rebuild it with edgeav export")
    return engine, meta


def torch_tensorrt_compile(model_path: str, out: str | Path, precision: str = "fp16") -> Path:
    """Second path: torch-tensorrt's dynamo compile of the visual encoder, saved as an ExportedProgram (.ep)."""
    try:
        import torch
        import torch_tensorrt
    except ImportError:
        raise EdgeavError(
            "torch-tensorrt is not installed", "pip install 'edgeav[tensorrt]' on an NVIDIA host"
        ) from None
    from edgeav.models import load_model

    device_info()
    m = load_model(model_path).eval().cuda()
    w, h = m.cfg.frame_size
    x = torch.randn(1, m.cfg.visual_frames, 3, h, w, device="cuda")
    dtype = {"fp16": torch.float16, "fp32": torch.float32}[precision]
    trt_mod = torch_tensorrt.compile(m.visual, ir="dynamo", inputs=[x], enabled_precisions={dtype})
    torch_tensorrt.save(trt_mod, str(out), inputs=[x])
    return Path(out)
