"""Where does INT8 start to pay on this CPU? Plain and depthwise-separable conv stacks on a 6×96×128 input (the
students' visual input) at growing widths, exported to ONNX and quantized to ONNX Runtime's CPU form (QOperator,
UINT8 activations, per-channel INT8 weights, as `edgeav export --format int8-cpu`), timed against FP32 at batch 1
and 8; and per layer kind at the students' shapes (chains of 8 equal stride-1 layers, time per layer), which is
what chose `student`'s dense convs (edgeav.models.rep). FP32 and INT8 are timed in interleaved rounds
(benchmarks.common.time_interleaved). Random weights: speed does not depend on what the weights hold. Writes
results/int8_crossover.{json,md}.

    python -m research.int8_crossover --threads 2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import command_line, machine, paired_ratio, time_interleaved, write_result
from research import RESULTS

INPUT = (6, 96, 128)


def conv_stack(kind: str, scale: int):
    """Five stride-2 stages, widths (8, 16, 32, 64, 128) × scale; `dense`: one 3×3 conv per stage, `depthwise`:
    a 3×3 stem then two depthwise 3×3 + pointwise 1×1 blocks per stage (`student`'s layout: ×1 is its 3.6 MMAC)."""
    from torch import nn

    widths = [w * scale for w in (8, 16, 32, 64, 128)]
    layers, c = [nn.Conv2d(INPUT[0], widths[0], 3, 2, 1), nn.ReLU6()], widths[0]
    for w in widths[1:]:
        if kind == "dense":
            layers += [nn.Conv2d(c, w, 3, 2, 1), nn.ReLU6()]
        else:
            for stride, cin in ((2, c), (1, w)):
                layers += [nn.Conv2d(cin, cin, 3, stride, 1, groups=cin), nn.ReLU6(), nn.Conv2d(cin, w, 1), nn.ReLU6()]
        c = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 128)).eval()


def conv_macs(net, shape: tuple[int, ...] = INPUT) -> int:
    import torch
    from torch import nn

    total = 0

    def hook(m, _, out):
        nonlocal total
        total += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    hooks = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(1, *shape))
    for h in hooks:
        h.remove()
    return total


LAYER_KINDS = {"depthwise 3×3": (3, True), "pointwise 1×1": (1, False), "dense 3×3": (3, False)}  # (kernel, depthwise)
LAYER_SHAPES = [(8, 48, 64), (16, 24, 32), (32, 12, 16), (64, 12, 16), (128, 6, 8)]


def layer_chain(kind: str, c: int, n: int = 8):
    """`n` equal stride-1 layers of one kind at width `c`: depthwise 3×3, pointwise 1×1 or dense 3×3, each + ReLU6."""
    from torch import nn

    k, depthwise = LAYER_KINDS[kind]
    layers = []
    for _ in range(n):
        layers += [nn.Conv2d(c, c, k, 1, k // 2, groups=c if depthwise else 1), nn.ReLU6()]
    return nn.Sequential(*layers).eval()


def export_pair(net, folder: Path, name: str, shape: tuple[int, ...] = INPUT) -> tuple[Path, Path]:
    import torch
    from onnxruntime.quantization import quantize_static

    from edgeav.export.quantize import CalibrationReader, quant_form

    fp32, int8 = folder / f"{name}.onnx", folder / f"{name}-int8.onnx"
    torch.onnx.export(
        net,
        torch.zeros(1, *shape),
        str(fp32),
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "b"}, "y": {0: "b"}},
        opset_version=17,
        dynamo=False,
    )

    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((4, *shape)).astype(np.float32) for _ in range(4)]
    quantize_static(
        str(fp32), str(int8), CalibrationReader("x", batches), **quant_form("cpu")
    )  # exactly `edgeav export --format int8-cpu`
    return fp32, int8


def time_pair(fp32: Path, int8: Path, a, batch: int, shape: tuple[int, ...] = INPUT) -> dict:
    """p50 ms of both graphs, interleaved in `a.rounds` rounds, and INT8's paired ratio to FP32."""
    t = time_interleaved(
        {"fp32": fp32, "int8": int8},
        shape,
        a.threads,
        a.rounds,
        a.runs if batch == 1 else max(5, a.runs // 4),
        a.warmup,
        batch,
    )
    return {"fp32": t["fp32"]["p50_ms"], "int8": t["int8"]["p50_ms"], "ratio": paired_ratio(t, "int8", "fp32")}


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"Machine: {m['cpu']} ({', '.join(m['isa'])}), {result['threads']} threads; ONNX Runtime CPU, FP32 "
        f"against the INT8 CPU form; p50 ms per call, the median of {result.get('rounds', 1)} interleaved rounds' "
        f"medians; INT8 / FP32: the median of the rounds' ratios. Command: `{result['command']}`.",
        "",
        "| stack | MMAC | FP32 batch 1 | INT8 batch 1 | INT8 / FP32 | FP32 batch 8 | INT8 batch 8 | INT8 / FP32 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        t = r["p50_ms"]
        q = r["int8_ratio"]
        lines.append(
            f"| {r['stack']} | {r['mmac']:.1f} | {t['fp32_b1']:.3f} | {t['int8_b1']:.3f} | "
            f"{q['b1']:.2f} | {t['fp32_b8']:.3f} | {t['int8_b8']:.3f} | {q['b8']:.2f} |"
        )
    if result.get("layers"):
        lines += [
            "",
            "Per layer, batch 1 (chains of 8 equal stride-1 layers + ReLU6; µs per layer, p50):",
            "",
            "| layer | C × H × W | MMAC | FP32 µs | INT8 µs | INT8 / FP32 |",
            "|---|---|---|---|---|---|",
        ]
        for r in result["layers"]:
            lines.append(
                f"| {r['kind']} | {' × '.join(map(str, r['shape']))} | {r['mmac']:.3f} | {r['fp32_us']:.1f} | "
                f"{r['int8_us']:.1f} | {r['int8_ratio']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--kinds", nargs="+", default=["depthwise", "dense"], choices=["depthwise", "dense"])
    ap.add_argument("--scales", nargs="+", type=int, default=[1, 2, 4, 8])
    ap.add_argument("--layer-kinds", nargs="*", default=list(LAYER_KINDS), choices=LAYER_KINDS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=100, help="timed calls per round")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds of FP32 and INT8")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    import torch

    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in a.kinds:
            for scale in a.scales:
                net = conv_stack(kind, scale)
                fp32, int8 = export_pair(net, Path(tmp), f"{kind}{scale}")
                t = {b: time_pair(fp32, int8, a, b) for b in (1, 8)}
                rows.append(
                    {
                        "stack": f"{kind} ×{scale}",
                        "mmac": conv_macs(net) / 1e6,
                        "p50_ms": {f"{p}_b{b}": t[b][p] for p in ("fp32", "int8") for b in t},
                        "int8_ratio": {f"b{b}": t[b]["ratio"] for b in t},
                    }
                )
                print(
                    markdown(
                        {"machine": machine(), "threads": a.threads, "command": "", "rows": rows[-1:]}
                    ).splitlines()[-1],
                    flush=True,
                )
        layers = []
        for kind in a.layer_kinds:
            for shape in LAYER_SHAPES:
                net = layer_chain(kind, shape[0])
                fp32, int8 = export_pair(net, Path(tmp), "layers", shape)
                t = time_pair(fp32, int8, a, 1, shape)
                layers.append(
                    {
                        "kind": kind,
                        "shape": list(shape),
                        "mmac": conv_macs(net, shape) / 8e6,
                        "fp32_us": t["fp32"] * 1e3 / 8,
                        "int8_us": t["int8"] * 1e3 / 8,
                        "int8_ratio": t["ratio"],
                    }
                )
                print(layers[-1], flush=True)
    result = {
        "machine": machine(),
        "threads": a.threads,
        "rounds": a.rounds,
        "rows": rows,
        "layers": layers,
        "command": command_line("research.int8_crossover", argv),
    }
    write_result("int8_crossover", result, markdown(result), a.out)


if __name__ == "__main__":
    main()
