"""`edgeav export MODEL --format F -o OUT`: one function per format, each printing the parity it measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgeav.atomic import write_json
from edgeav.errors import EdgeavError

FORMATS = ("onnx", "int8", "int8-cpu", "fp16", "engine")


def _ort_vs_torch(side_path: Path, model: str, n: int = 8) -> dict:
    """Cosine agreement of the exported encoders with PyTorch on real windows of the bundled clip."""
    import torch

    from edgeav.backends.onnx_backend import OnnxBackend
    from edgeav.defaults import DEFAULT_CLIP
    from edgeav.export.quantize import calibration_windows
    from edgeav.models import load_model

    if json.loads(side_path.read_text())["precision"] == "fp16":
        return {}  # FP16 runs on GPU providers only: no CPU comparison here
    m = load_model(model)
    be = OnnxBackend(side_path, providers=["CPUExecutionProvider"])
    w = calibration_windows(str(DEFAULT_CLIP), m.cfg, n)
    with torch.no_grad():
        rv = m.encode_visual(torch.from_numpy(w["frames"])).numpy()
        ra = m.encode_audio(torch.from_numpy(w["mel"])).numpy()
    ov, oa = be.encode_preprocessed(w["frames"]), be.encode_audio(w["mel"])
    return {
        "visual_min_cosine": float((rv * ov).sum(1).min()),
        "audio_min_cosine": float((ra * oa).sum(1).min()),
        "visual_max_abs_err": float(np.abs(rv - ov).max()),
        "audio_max_abs_err": float(np.abs(ra - oa).max()),
    }


def export(
    model: str,
    fmt: str,
    out: str,
    calib_videos: list[str] | None = None,
    calib_windows: int = 256,
    engine_from: str = "int8",
    float_convs: int = 1,
) -> dict:
    """`engine` builds TensorRT engines from the `engine_from` (int8 Q/DQ or fp16) ONNX export of the model."""
    from edgeav.export.onnx_export import export_onnx

    if fmt not in FORMATS:
        raise EdgeavError(f"unknown export format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    if fmt == "engine":
        if engine_from not in ("int8", "fp16"):  # int8-cpu is ONNX Runtime's QOperator form: not for TensorRT
            raise EdgeavError(
                f"engines are built from an int8 or fp16 export, not {engine_from!r}", "use --engine-from int8 or fp16"
            )
        from edgeav.export.tensorrt import _trt, device_info

        _trt(), device_info()  # fail before minutes of quantization, not after
    graph = engine_from if fmt == "engine" else fmt
    stem = Path(out)
    fp32 = stem.with_name(stem.name + "-fp32") if fmt != "onnx" else stem
    side = export_onnx(model, fp32)
    report = {"onnx_parity_max_abs_err": side["parity_max_abs_err"]}
    side_path = fp32.with_suffix(".onnx.json")
    if graph in ("int8", "int8-cpu"):
        from edgeav.defaults import DEFAULT_CLIP
        from edgeav.export.lint import lint_qdq
        from edgeav.export.quantize import quantize_int8

        target = "tensorrt" if graph == "int8" else "cpu"
        side = quantize_int8(side_path, stem, calib_videos or [str(DEFAULT_CLIP)], calib_windows, target, float_convs)
        side_path = stem.with_suffix(".onnx.json")
        linted = [g for g in ("visual", "audio", "events_frame") if g in side["files"]]
        for enc in linted if target == "tensorrt" else ():  # the CPU form is not meant for TensorRT
            problems, stats = lint_qdq(str(stem.parent / side["files"][enc]))
            report[f"{enc}_qdq_lint"] = {"problems": problems[:5], **stats}
            if problems:
                raise EdgeavError(
                    f"INT8 graph {side['files'][enc]} breaks TensorRT's Q/DQ rules: {problems[0]}",
                    "report this; the quantizer settings are in edgeav/export/quantize.py",
                )
    elif graph == "fp16":
        from edgeav.export.quantize import convert_fp16

        side = convert_fp16(side_path, stem)
        side_path = stem.with_suffix(".onnx.json")
    if fmt == "engine":
        from edgeav.export.tensorrt import build_engine
        from edgeav.models import AVConfig

        cfg = AVConfig.from_json(side["model"])
        w, h = cfg.frame_size
        engines = {}
        graphs = [
            ("visual", "frames", (1, cfg.visual_frames, 3, h, w)),
            ("audio", "mel", (1, cfg.audio_frames, cfg.n_mels)),
        ]
        if "events_frame" in side["files"]:
            graphs += [
                ("events_frame", "frame_pair", (1, 2, 3, h, w)),
                ("events_score", "codes", (1, sum(cfg.event_context) + 1, cfg.event_dim)),
            ]
        for enc, name, shape in graphs:
            eng = stem.with_suffix(f".{enc}.engine")
            report[f"{enc}_engine"] = build_engine(stem.parent / side["files"][enc], eng, name, shape)
            engines[enc] = eng.name
        write_json(stem.with_suffix(".trt.json"), {**side, "engines": engines})
        return report
    report.update(_ort_vs_torch(side_path, model))
    report["sidecar"] = str(side_path)
    return report
