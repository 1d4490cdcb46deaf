"""Latency of the visual encoder at batch 1 for each backend × precision (warm up, then time), and the run
pipeline's per-stage breakdown on the bundled clip. Writes benchmarks/results/latency.{json,md}.

    python -m benchmarks.latency --model teacher --threads 2 --runs 100
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np


def time_fn(fn, warmup: int, runs: int) -> dict:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts = np.array(ts)
    return {"p50_ms": float(np.percentile(ts, 50)), "p95_ms": float(np.percentile(ts, 95)),
            "p99_ms": float(np.percentile(ts, 99)), "windows_per_s": float(1e3 / np.median(ts)), "runs": runs}


def machine() -> dict:
    import torch

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="teacher")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--exports", default="exports")
    ap.add_argument("--out", default="benchmarks/results/latency")
    ap.add_argument("--calib-windows", type=int, default=128)
    a = ap.parse_args()

    import torch
    from edgeav.atomic import write_json
    from edgeav.backends import load_backend
    from edgeav.defaults import DEFAULT_CLIP
    from edgeav.export.formats import export
    from edgeav.export.onnx_export import example_inputs
    from edgeav.pipeline import RunConfig, run

    torch.set_num_threads(a.threads)
    stem = Path(a.exports) / Path(a.model).stem
    if not Path(f"{stem}-int8.onnx.json").exists():
        export(a.model, "int8", f"{stem}-int8", calib_windows=a.calib_windows)
    variants = {"torch fp32": (a.model, "fp32"), "onnxruntime fp32": (f"{stem}-int8-fp32.onnx.json", "fp32"),
                "onnxruntime int8": (f"{stem}-int8.onnx.json", "int8")}
    rows = {}
    for name, (path, prec) in variants.items():
        be = load_backend(path, "auto", prec, a.threads)
        x = example_inputs(be.cfg, n=1)
        rows[name] = {"visual": time_fn(lambda: be.encode_preprocessed(x["frames"]), a.warmup, a.runs),
                      "audio": time_fn(lambda: be.encode_audio(x["mel"]), a.warmup, a.runs),
                      "file_mb": sum(Path(path).parent.joinpath(f).stat().st_size for f in
                                     __import__("json").loads(Path(path).read_text())["files"].values()) / 1e6
                      if path.endswith(".json") else Path(str(be.model_path)).stat().st_size / 1e6}
        print(name, {k: round(v["p50_ms"], 2) for k, v in rows[name].items() if isinstance(v, dict)}, flush=True)
    stages = {}
    for name, (path, prec) in variants.items():
        res = run(RunConfig(str(DEFAULT_CLIP), model=path, precision=prec, quiet=True, threads=a.threads))
        stages[name] = res.summary()
    result = {"machine": machine(), "threads": a.threads, "batch": 1, "model": a.model, "encoders": rows,
              "pipeline_on_bundled_clip": stages, "command": "python -m benchmarks.latency " + " ".join(sys.argv[1:])}
    write_json(a.out + ".json", result)
    lines = [f"Machine: {result['machine']['cpu']}, {a.threads} threads, batch 1; {a.runs} timed runs after {a.warmup} "
             f"warm-up. Command: `{result['command']}`.", "",
             "| backend | size (MB) | visual p50 / p95 / p99 ms | visual windows/s | audio p50 ms | run pipeline total p50 / p95 ms "
             "(decode, preprocess, encode, search p50) | run windows/s |", "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        s = stages[name]["latency_ms"]
        lines.append(f"| {name} | {r['file_mb']:.1f} | {r['visual']['p50_ms']:.1f} / {r['visual']['p95_ms']:.1f} / "
                     f"{r['visual']['p99_ms']:.1f} | {r['visual']['windows_per_s']:.1f} | {r['audio']['p50_ms']:.2f} | "
                     f"{s['total']['p50']:.1f} / {s['total']['p95']:.1f} ({s['decode']['p50']:.1f}, "
                     f"{s['preprocess']['p50']:.1f}, {s['encode']['p50']:.1f}, {s['search']['p50']:.2f}) | "
                     f"{stages[name]['windows_per_s']:.1f} |")
    Path(a.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
