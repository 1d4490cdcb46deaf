"""Per-encoder ONNX export with stable input/output names and a dynamic batch axis, a sidecar JSON describing
preprocessing and inputs, and a PyTorch-vs-ONNX Runtime parity check on every export.

Files for a model exported to OUT/NAME: NAME.visual.onnx, NAME.audio.onnx, NAME.onnx.json (the sidecar).
Inputs are preprocessed tensors: `frames` (N, T, 3, H, W) ImageNet-normalized; `mel` (N, 100, 64) log-mel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgeav.models.av import AVConfig, AVModel

import platform
from pathlib import Path

import numpy as np
import torch

from edgeav.atomic import atomic_path, sha1_file, write_json
from edgeav.errors import EdgeavError
from edgeav.frontends import IMAGENET_MEAN, IMAGENET_STD, MelSpec
from edgeav.models import load_model
from edgeav.models.rep import deploy_form
from edgeav.models.store import model_json, resolve_model_path

OPSET = 17
# The form of the exported graphs for given weights: bumped when the deploy form or the quantizer settings change,
# so cached exports are remade (2: the attention head as matmuls over positions × channels, the INT8 CPU form
# quantizing the backbones' ops only).
GRAPH_FORM = 2


class _Visual(torch.nn.Module):
    def __init__(self, m: AVModel) -> None:
        super().__init__()
        self.m = m

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        v, attn = self.m.encode_visual(frames, return_attention=True)
        return (v, *attn)


class _Audio(torch.nn.Module):
    def __init__(self, m: AVModel) -> None:
        super().__init__()
        self.m = m

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.m.encode_audio(mel)


class _EventFrame(torch.nn.Module):
    """The event head's per-frame pass: two consecutive frames in [0, 1] → the current frame's code and map."""

    def __init__(self, m: AVModel) -> None:
        super().__init__()
        self.events = m.events

    def forward(self, frame_pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code, attn = self.events.encode_frames(frame_pair, per_frame=False)  # pairs: one conv of six channels
        return code[:, 0], attn[:, 0]


class _EventScore(torch.nn.Module):
    """The event head's temporal layer and heads: `length` codes → onset logit and embedding."""

    def __init__(self, m: AVModel) -> None:
        super().__init__()
        self.events = m.events

    def forward(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.events.from_codes(codes)


def example_inputs(cfg: AVConfig, n: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    w, h = cfg.frame_size
    out = {
        "frames": rng.standard_normal((n, cfg.visual_frames, 3, h, w)).astype(np.float32),
        "mel": (rng.standard_normal((n, cfg.audio_frames, cfg.n_mels)) * 2 - 6).astype(np.float32),
    }
    if cfg.event_widths:
        length = sum(cfg.event_context) + 1
        out["frame_pair"] = rng.random((n, 2, 3, h, w)).astype(np.float32)
        out["codes"] = np.abs(rng.standard_normal((n, length, cfg.event_dim))).astype(np.float32)
    return out


EVENT_GRAPHS = (  # (file key, input, outputs, wrapper)
    ("events_frame", "frame_pair", ["code", "attention"], _EventFrame),
    ("events_score", "codes", ["onset", "embedding"], _EventScore),
)


def visual_outputs(cfg: AVConfig) -> list[str]:
    """The visual graph's output names: the embedding, then one attention map per level for attention models."""
    return ["embedding"] + [f"attention{i}" for i in range(3 if cfg.attention else 0)]


def _export(module: torch.nn.Module, x: torch.Tensor, path: Path, in_name: str, out_names: list[str]) -> None:
    dyn = {in_name: {0: "batch"}, **{o: {0: "batch"} for o in out_names}}
    with atomic_path(path, suffix=".onnx") as tmp:
        torch.onnx.export(
            module,
            (x,),
            str(tmp),
            input_names=[in_name],
            output_names=out_names,
            dynamic_axes=dyn,
            opset_version=OPSET,
            dynamo=False,
        )


def parity(onnx_path: Path, torch_fn: Callable[[torch.Tensor], torch.Tensor], x: np.ndarray, in_name: str) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {in_name: x})[0]
    with torch.no_grad():
        ref = torch_fn(torch.from_numpy(x)).numpy()
    return float(np.abs(got - ref).max())


def export_onnx(model: str, out: str | Path) -> dict:
    """Export both encoders of `model` (registry name or .safetensors) to `out` (a path stem). Returns the sidecar."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise EdgeavError("ONNX export needs onnx and onnxruntime", "pip install 'edgeav[onnx]'") from None
    src = resolve_model_path(model)
    m = load_model(model).eval()
    cfg = m.cfg
    stem = Path(out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    x = example_inputs(cfg)
    vis_out = visual_outputs(cfg)
    deployed = deploy_form(m)  # Rep branches and the frame difference folded into single convs
    # wrappers in eval mode: the exporter restores each module's mode afterwards, and a wrapper left in training
    # mode would switch the model's BatchNorm back to batch statistics
    _export(
        _Visual(deployed).eval(), torch.from_numpy(x["frames"]), stem.with_suffix(".visual.onnx"), "frames", vis_out
    )
    _export(_Audio(deployed).eval(), torch.from_numpy(x["mel"]), stem.with_suffix(".audio.onnx"), "mel", ["embedding"])
    files = {"visual": stem.with_suffix(".visual.onnx").name, "audio": stem.with_suffix(".audio.onnx").name}
    for key, inp, outs, wrap in EVENT_GRAPHS if cfg.event_widths else ():
        _export(wrap(deployed).eval(), torch.from_numpy(x[inp]), stem.with_suffix(f".{key}.onnx"), inp, outs)
        files[key] = stem.with_suffix(f".{key}.onnx").name
    m.eval()
    # parity against the model as trained (not its deploy form): the folding is checked with the export
    xp = example_inputs(cfg, n=3, seed=1)  # another batch size than the export's: the batch axis is dynamic
    err = {
        "visual": parity(stem.with_suffix(".visual.onnx"), m.encode_visual, xp["frames"], "frames"),
        "audio": parity(stem.with_suffix(".audio.onnx"), m.encode_audio, xp["mel"], "mel"),
    }
    for key, inp, _, wrap in EVENT_GRAPHS if cfg.event_widths else ():
        first = wrap(m).eval()
        err[key] = parity(stem.with_suffix(f".{key}.onnx"), lambda t, f=first: f(t)[0], xp[inp], inp)
    import onnx
    import onnxruntime

    w, h = cfg.frame_size
    side = {
        "format": "edgeav-onnx/1",
        "graph_form": GRAPH_FORM,
        "model": model_json(cfg, m.card),
        "precision": "fp32",
        "opset": OPSET,
        "files": files,
        "inputs": {
            "frames": {
                "shape": ["batch", cfg.visual_frames, 3, h, w],
                "dtype": "float32",
                "layout": "N,T,C,H,W RGB",
                "mean": IMAGENET_MEAN.tolist(),
                "std": IMAGENET_STD.tolist(),
                "frame_offsets_s": list(cfg.frame_offsets),
            },
            "mel": {"shape": ["batch", cfg.audio_frames, cfg.n_mels], "dtype": "float32", "spec": MelSpec().__dict__},
        },
        "outputs": {"visual": vis_out, "audio": ["embedding"], **{k: o for k, _, o, _ in EVENT_GRAPHS if k in files}},
        "embedding_dim": cfg.embed_dim,
        "source_weights_sha1": sha1_file(src),
        "versions": {
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(),
        },
        "parity_max_abs_err": err,
    }
    if cfg.event_widths:
        length = sum(cfg.event_context) + 1
        side["inputs"]["frame_pair"] = {
            "shape": ["batch", 2, 3, h, w],
            "dtype": "float32",
            "layout": "N,2,C,H,W RGB /255",
        }
        side["inputs"]["codes"] = {"shape": ["batch", length, cfg.event_dim], "dtype": "float32"}
    write_json(stem.with_suffix(".onnx.json"), side)
    return side
