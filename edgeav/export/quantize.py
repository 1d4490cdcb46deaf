"""INT8 static post-training quantization in the form TensorRT 10/11 consumes: explicit Q/DQ nodes, symmetric
INT8, zero point 0, per-channel weights (TensorRT 11 dropped implicit INT8 calibration and the INT8/FP16 builder
flags: the precision lives in the graph). FP16 by converting the graph's floats.

Calibration runs the FP32 ONNX graph over real windows (frames and log-mels of footage).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from edgeav.models.av import AVConfig

from edgeav.atomic import write_json


class CalibrationReader:
    """ONNX Runtime's calibration data reader over a list of batches for the input `name`."""

    def __init__(self, name: str, batches: list[np.ndarray]) -> None:
        self.name, self.it = name, iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self.it, None)
        return None if x is None else {self.name: x}

    def rewind(self) -> None:
        pass


def calibration_windows(video: str, cfg: AVConfig, n: int) -> dict[str, np.ndarray]:
    """`n` real (frames, mel) windows evenly spread over a video, preprocessed as the encoders expect."""
    from edgeav.frontends import log_mel, preprocess_frames
    from edgeav.io import VideoFile

    v = VideoFile(video, fps=None, size=cfg.frame_size)
    frames = np.stack([img for _, img in v.frames()])
    fps = v.info.fps
    starts = np.linspace(0, max(0.0, v.duration - 1.0 - max(cfg.frame_offsets)), n)
    stacks = np.stack(
        [frames[[min(int((s + o) * fps + 1e-3), len(frames) - 1) for o in cfg.frame_offsets]] for s in starts]
    )
    mels = (
        np.stack([log_mel(v.audio(s, s + 1.0), n_frames=cfg.audio_frames) for s in starts])
        if v.info.has_audio
        else None
    )
    out = {"frames": preprocess_frames(stacks), "mel": mels}
    if cfg.event_widths:  # consecutive frames at the event head's rate, as it reads them ([0, 1] RGB)
        k = np.clip((starts * cfg.event_fps).astype(int), 1, None)
        step = v.info.fps / cfg.event_fps
        idx = np.minimum((np.stack([k - 1, k], 1) * step + 1e-3).astype(int), len(frames) - 1)
        out["frame_pair"] = frames[idx].transpose(0, 1, 4, 2, 3).astype(np.float32) / 255.0
    v.close()
    return out


def float_nodes(onnx_path: str | Path, float_convs: int = 1) -> list[str]:
    """Nodes kept in float: the first `float_convs` convolutions of the encoder (in graph order) and any
    BatchNormalization left unfused.

    Measured on the shipped teacher (64 real windows of the bundled clip): with every conv INT8 the audio encoder's
    output keeps a mean cosine of 0.53 to FP32 (min −0.03) — the log-mel input's range is dominated by its silence
    floor, so one symmetric INT8 scale for the first layer's input erases the detail; keeping that one conv (0.5% of
    the audio MACs) in float gives 0.93 (min 0.86). The first layer is the usual mixed-precision exception, and
    TensorRT runs a conv without Q/DQ in float in a strongly typed network.

    More leading visual convs can be kept in float (export --int8-float-convs N). It was added when `student`'s
    INT8 seemed to lose half its top-1; that loss turned out to be ONNX Runtime's saturating int8 CPU kernels
    (edgeav.backends.onnx_backend), and computed exactly the graph keeps its FP32 accuracy with one float conv."""
    import onnx

    g = onnx.load(str(onnx_path)).graph
    convs = [n.name for n in g.node if n.op_type == "Conv"]
    return convs[: max(1, float_convs)] + [n.name for n in g.node if n.op_type == "BatchNormalization"]


def pooling_nodes(onnx_path: str | Path) -> list[str]:
    """The event frame graph's attention pooling: every node fed, directly or not, by the last conv stage's output
    (the score conv, its softmax, the weighted sum and max over positions, the output layer); a Shape's output is
    metadata, not the activation, so what is computed from it is not followed."""
    import onnx

    g = onnx.load(str(onnx_path)).graph
    trunk = [n for n in g.node if n.op_type == "Relu" and "/convs/" in n.name]
    if not trunk:
        return []
    reached, names = set(trunk[-1].output), []
    for n in g.node:  # graph order is topological: one pass finds everything downstream
        if n.op_type != "Shape" and any(i in reached for i in n.input):
            reached.update(n.output)
            names.append(n.name)
    return names


QUANT_TARGETS = ("tensorrt", "cpu")


# What the CPU form quantizes: the backbones' ops (convolutions with their activations fused, and the pooling,
# padding, residual adds and SiLU gates of the teacher's trunk) and nothing after them. The attention head — per
# level two small matmuls and a softmax over a few hundred positions, then one Gemm — stays in float: quantized,
# each of its ops gains a quantize/dequantize pair that costs more than the op, and at batch 1 the whole graph
# then ran no faster than FP32. Speed and accuracy of both scopes: `python -m research.int8_scope`.
CPU_QUANT_OPS = ["Conv", "Relu", "Clip", "MaxPool", "Pad", "Add", "Mul", "Sigmoid"]


def quant_form(target: str, cpu_ops: list[str] | None = CPU_QUANT_OPS) -> dict:
    """ONNX Runtime `quantize_static` arguments of an INT8 form (per-channel INT8 weights and MinMax calibration in
    both): `tensorrt` explicit symmetric Q/DQ on every op TensorRT can run in INT8, `cpu` QOperator with UINT8
    activations on the op types `cpu_ops` (None: every op the quantizer takes)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

    if target == "tensorrt":
        form = dict(
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                # TensorRT takes float biases (it folds them); int32 bias Q/DQ is refused
                "QuantizeBias": False,
            },
        )
    else:
        form = dict(
            quant_format=QuantFormat.QOperator,
            activation_type=QuantType.QUInt8,
            op_types_to_quantize=cpu_ops,
            extra_options={"WeightSymmetric": True},
        )
    return dict(weight_type=QuantType.QInt8, per_channel=True, calibrate_method=CalibrationMethod.MinMax, **form)


def _constants_as_initializers(src: Path, dst: Path) -> Path:
    """The graph with its Constant nodes, and Identity nodes of initializers, turned into initializers: the exporter
    shares equal folded-BatchNorm conv biases through Identity nodes, which ONNX Runtime's QOperator quantizer
    cannot read as weights."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(src))
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    keep = []
    for n in g.node:
        if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value":
            t = numpy_helper.from_array(numpy_helper.to_array(n.attribute[0].t), n.output[0])
        elif n.op_type == "Identity" and n.input[0] in inits:
            t = numpy_helper.from_array(numpy_helper.to_array(inits[n.input[0]]), n.output[0])
        else:
            keep.append(n)
            continue
        g.initializer.append(t)
        inits[t.name] = t
    del g.node[:]
    g.node.extend(keep)
    onnx.save(m, str(dst))
    return dst


def quantize_int8(
    sidecar_path: str | Path,
    out_stem: str | Path,
    calib_videos: list[str],
    n_windows: int = 64,
    target: str = "tensorrt",
    float_convs: int = 1,
    cpu_ops: list[str] | None = CPU_QUANT_OPS,
    float_event_pooling: bool = True,
) -> dict:
    """`target` tensorrt: explicit Q/DQ, symmetric INT8 activations (TensorRT's form; ONNX Runtime's CPU kernels
    run it slowly). `target` cpu: ONNX Runtime's QOperator form with asymmetric UINT8 activations and symmetric
    per-channel INT8 weights — the U8S8 kernels ORT optimizes on x86 and ARM (measured on the teacher's visual
    encoder, 1 thread: 6.5 ms against 11.2 ms FP32 and 36 ms for the TensorRT-form graph) — on the op types
    `cpu_ops` (None: every op). Not for TensorRT.

    `float_event_pooling` keeps the event frame graph's attention pooling (`pooling_nodes`) in float in both
    forms: on the corpus's val clips it keeps FP32's detection F1 (0.605 / 0.601 against 0.604 / 0.598 with it
    INT8, CPU / Q/DQ form; FP32 0.606) at about the same cost per frame (`python -m research.event_int8`)."""
    import json

    from onnxruntime.quantization import quantize_static

    from edgeav.models import AVConfig

    side = json.loads(Path(sidecar_path).read_text())
    cfg = AVConfig.from_json(side["model"])
    src_dir = Path(sidecar_path).parent
    out_stem = Path(out_stem)
    per_video = max(1, n_windows // max(1, len(calib_videos)))
    wins = [calibration_windows(v, cfg, per_video) for v in calib_videos]
    data = {
        "frames": np.concatenate([w["frames"] for w in wins]),
        "mel": np.concatenate([w["mel"] for w in wins if w["mel"] is not None]),
    }
    quantized = [("visual", "frames"), ("audio", "mel")]
    if "events_frame" in side["files"]:  # the event head's per-frame convs; its tiny temporal graph stays float
        data["frame_pair"] = np.concatenate([w["frame_pair"] for w in wins])
        quantized.append(("events_frame", "frame_pair"))
    kept = {}
    for enc, inp in quantized:
        batches = [data[inp][i : i + 8] for i in range(0, len(data[inp]), 8)]
        # the audio encoder's first conv is its only sensitive one (measured); the visual count is the option
        kept[enc] = float_nodes(src_dir / side["files"][enc], float_convs if enc == "visual" else 1)
        if enc == "events_frame" and float_event_pooling:
            kept[enc] += pooling_nodes(src_dir / side["files"][enc])
        src = _constants_as_initializers(src_dir / side["files"][enc], out_stem.with_suffix(f".{enc}.src.onnx"))
        try:
            quantize_static(
                str(src),
                str(out_stem.with_suffix(f".{enc}.onnx")),
                CalibrationReader(inp, batches),
                nodes_to_exclude=kept[enc],
                **quant_form(target, cpu_ops),
            )
        finally:
            src.unlink(missing_ok=True)
    floats = {}
    for g in side["files"]:
        if g not in dict(quantized):  # float graphs are copied beside the quantized ones: one folder per export
            floats[g] = out_stem.with_suffix(f".{g}.onnx").name
            shutil.copyfile(src_dir / side["files"][g], out_stem.with_suffix(f".{g}.onnx"))
    side = {
        **side,
        "precision": "int8",
        "files": {**floats, **{e: out_stem.with_suffix(f".{e}.onnx").name for e, _ in quantized}},
        "float_graphs": sorted(floats),
        "calibration": {"videos": [Path(v).name for v in calib_videos], "windows": int(len(data["frames"]))},
        "float_nodes": kept,
        "quant_target": target,
        "quantized_ops": "all" if target == "tensorrt" or cpu_ops is None else list(cpu_ops),
    }
    write_json(out_stem.with_suffix(".onnx.json"), side)
    return side


def convert_fp16(sidecar_path: str | Path, out_stem: str | Path) -> dict:
    import json

    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    side = json.loads(Path(sidecar_path).read_text())
    src_dir, out_stem = Path(sidecar_path).parent, Path(out_stem)
    for enc in side["files"]:  # every graph, the event head's too
        m = convert_float_to_float16(onnx.load(str(src_dir / side["files"][enc])), keep_io_types=True)
        onnx.save(m, str(out_stem.with_suffix(f".{enc}.onnx")))
    side = {
        **side,
        "precision": "fp16",
        "files": {e: out_stem.with_suffix(f".{e}.onnx").name for e in side["files"]},
    }
    write_json(out_stem.with_suffix(".onnx.json"), side)
    return side
