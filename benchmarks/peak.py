"""The machine's limit: measured peak GFLOP/s of each backend on this CPU (a large GEMM and a 3×3 convolution;
INT8 as GOP/s through ONNX Runtime's Q/DQ kernels), against what each model's visual encoder achieves at batch 1
(2 × MACs / p50 latency, from results/latency.json). Writes results/peak.{json,md}.

    python -m benchmarks.peak --threads 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, command_line, machine, time_fn, write_result


def _onnx_session(kind: str, threads: int, n: int, c: int, hw: int):
    """A one-op graph: `gemm` (n×n @ n×n) or `conv` (1×c×hw×hw, 3×3, c→c); fp32, int8 (symmetric INT8 Q/DQ on both
    operands, TensorRT's form) or int8cpu (UINT8 activations, INT8 weights: ORT's fast U8S8 CPU kernels)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    op, int8 = kind.split("-")
    if op == "gemm":
        x_shape, w = [n, n], rng.standard_normal((n, n)).astype(np.float32)
    else:
        x_shape, w = [1, c, hw, hw], rng.standard_normal((c, c, 3, 3)).astype(np.float32)
    nodes, inits, x_name, w_name = [], [numpy_helper.from_array(w, "W")], "x", "W"
    if int8 in ("int8", "int8cpu"):  # per-tensor Q/DQ on both operands: ORT fuses them into integer kernels
        zx = np.array(0, np.int8) if int8 == "int8" else np.array(128, np.uint8)
        inits += [
            numpy_helper.from_array(np.array(0.05, np.float32), "s"),
            numpy_helper.from_array(np.array(0, np.int8), "z"),
            numpy_helper.from_array(zx, "zx"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["x", "s", "zx"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "s", "zx"], ["xd"]),
            helper.make_node("QuantizeLinear", ["W", "s", "z"], ["wq"]),
            helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wd"]),
        ]
        x_name, w_name = "xd", "wd"
    if op == "gemm":
        nodes.append(helper.make_node("MatMul", [x_name, w_name], ["y"]))
    else:
        nodes.append(helper.make_node("Conv", [x_name, w_name], ["y"], pads=[1, 1, 1, 1]))
    g = helper.make_graph(
        nodes,
        kind,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = rng.standard_normal(x_shape).astype(np.float32)
    flops = 2 * n**3 if op == "gemm" else 2 * c * c * 9 * hw * hw
    return (lambda: sess.run(None, {"x": x})), flops


def peaks(a) -> dict:
    import torch

    torch.set_num_threads(a.threads)
    out = {}
    n, c, hw = a.gemm, a.conv_channels, a.conv_size
    x, w = torch.randn(n, n), torch.randn(n, n)
    t = time_fn(lambda: x @ w, a.warmup, a.runs)
    out["torch fp32 gemm"] = {"gflops": 2 * n**3 / t["p50_ms"] / 1e6, **t}
    conv = torch.nn.Conv2d(c, c, 3, padding=1, bias=False).eval()
    xi = torch.randn(1, c, hw, hw)
    with torch.no_grad():
        t = time_fn(lambda: conv(xi), a.warmup, a.runs)
    out["torch fp32 conv3x3"] = {"gflops": 2 * c * c * 9 * hw * hw / t["p50_ms"] / 1e6, **t}
    for kind in ("gemm-fp32", "gemm-int8", "gemm-int8cpu", "conv-fp32", "conv-int8", "conv-int8cpu"):
        fn, flops = _onnx_session(kind, a.threads, n, c, hw)
        t = time_fn(fn, a.warmup, a.runs)
        op, prec = kind.split("-")
        prec = "int8-cpu" if prec == "int8cpu" else prec
        out[f"onnxruntime {prec} {'gemm' if op == 'gemm' else 'conv3x3'}"] = {"gflops": flops / t["p50_ms"] / 1e6, **t}
    return out


def achieved(latency: dict, peak: dict) -> list[dict]:
    """Each model's visual encoder: 2·MACs / p50 against the backend's best measured peak."""
    from edgeav.models import load_model
    from edgeav.models.profile import encoder_costs

    rows = []
    for model, variants in latency.get("models", {}).items():
        macs = encoder_costs(load_model(model))["visual"]["macs"]
        for name, r in variants.items():
            if r.get("status") != "ok":
                continue
            backend, prec = name.split(",")[0].rsplit(" ", 1)  # "onnxruntime int8, fused CPU kernels": int8's peak
            same = [v["gflops"] for k, v in peak.items() if k.rsplit(" ", 1)[0] == f"{backend} {prec}"]
            best = max(same) if same else None
            g = 2 * macs / r["visual"]["p50_ms"] / 1e6
            rows.append(
                {
                    "model": model,
                    "variant": name,
                    "visual_macs": macs,
                    "achieved_gflops": g,
                    "peak_gflops": best,
                    "fraction_of_peak": g / best if best else None,
                }
            )
    return rows


def markdown(result: dict) -> str:
    lines = [
        f"Machine: {result['machine']['cpu']} ({', '.join(result['machine']['isa'])}), {result['threads']} threads. "
        f"Command: `{result['command']}`.",
        "",
        "| kernel | GFLOP/s (INT8: GOP/s) | p50 ms |",
        "|---|---|---|",
    ]
    for k, v in result["peak"].items():
        lines.append(f"| {k} | {v['gflops']:.1f} | {v['p50_ms']:.2f} |")
    if result["achieved"]:
        lines += [
            "",
            "| model | variant | visual MMAC | achieved GFLOP/s at batch 1 | backend peak | fraction |",
            "|---|---|---|---|---|---|",
        ]
        for r in result["achieved"]:
            frac = f"{r['fraction_of_peak']:.1%}" if r["fraction_of_peak"] else "–"
            lines.append(
                f"| {r['model']} | {r['variant']} | {r['visual_macs'] / 1e6:.1f} | {r['achieved_gflops']:.1f} | "
                f"{r['peak_gflops'] or 0:.1f} | {frac} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gemm", type=int, default=1024)
    ap.add_argument("--conv-channels", type=int, default=64)
    ap.add_argument("--conv-size", type=int, default=56)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    p = peaks(a)
    lat_path = Path(a.out) / "latency.json"
    result = {
        "machine": machine(),
        "threads": a.threads,
        "peak": p,
        "achieved": achieved(json.loads(lat_path.read_text()), p) if lat_path.exists() else [],
        "command": command_line("peak", argv),
    }
    md = markdown(result)
    write_result("peak", result, md, a.out)


if __name__ == "__main__":
    main()
