"""Latency of each model × backend × precision at batch 1 (warm up, then time: p50/p95/p99, windows/s), and the run
pipeline's per-stage breakdown on the bundled clip. Variants a machine cannot run (FP16 without a GPU provider,
TensorRT without TensorRT) are listed with the error they give. Writes results/latency.{json,md}.

    python -m benchmarks.latency --models teacher student student_small --threads 2 --runs 100 --rounds 5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.common import (
    RESULTS,
    calibration_videos,
    call_times,
    command_line,
    export_size_mb,
    int8_export,
    machine,
    model_stem,
    round_ratio,
    summarize_rounds,
    write_result,
)


def variants(model: str, exports: str, corpus: str | None, calib_windows: int) -> dict:
    """name → a function giving (model file, backend, precision, exact_qdq); it raises EdgeavError where this
    machine cannot make or run the variant (FP16 on a CPU-only ONNX Runtime, TensorRT absent)."""
    from edgeav.export.formats import export

    fp32, int8 = int8_export(model, exports, corpus, calib_windows)
    _, int8_cpu = int8_export(model, exports, corpus, calib_windows, "int8-cpu")
    stem = Path(exports) / model_stem(model)

    def fp16():
        if not Path(f"{stem}-fp16.onnx.json").exists():
            export(model, "fp16", f"{stem}-fp16")
        return f"{stem}-fp16.onnx.json", "onnx", "fp16", None

    def engine():
        if not Path(f"{stem}-int8.trt.json").exists():
            export(model, "engine", f"{stem}-int8", calibration_videos(corpus), calib_windows)
        return f"{stem}-int8.trt.json", "tensorrt", "int8", None

    return {
        "torch fp32": lambda: (model, "torch", "fp32", None),
        "onnxruntime fp32": lambda: (fp32, "onnx", "fp32", None),
        # TensorRT's Q/DQ form: computed exactly (the default on CPU), and by ORT's fused int8 kernels
        "onnxruntime int8": lambda: (int8, "onnx", "int8", None),
        "onnxruntime int8, fused CPU kernels": lambda: (int8, "onnx", "int8", False),
        "onnxruntime int8-cpu": lambda: (int8_cpu, "onnx", "int8", None),
        "onnxruntime fp16": fp16,
        "tensorrt int8": engine,
    }


def measure(model: str, a) -> dict:
    """Every variant that runs here, timed in `a.rounds` interleaved rounds (load, warm up, time, free — each variant
    in turn), so this shared machine's load changes land on all of them alike; then one pipeline run each."""
    from edgeav.backends import load_backend
    from edgeav.defaults import DEFAULT_CLIP
    from edgeav.errors import EdgeavError
    from edgeav.export.onnx_export import example_inputs
    from edgeav.pipeline import RunConfig, run

    rows, specs = {}, {}
    for name, make in variants(model, a.exports, a.corpus, a.calib_windows).items():
        try:
            path, backend, prec, exact = spec = make()
            be = load_backend(path, backend, prec, a.threads, exact_qdq=exact)
        except EdgeavError as e:  # recorded, never silently replaced by another precision
            rows[name] = {"status": "unavailable", "reason": e.what}
            continue
        specs[name] = spec
        rows[name] = {
            "status": "ok",
            "file_mb": export_size_mb(path)
            if path.endswith(".json")
            else Path(str(be.model_path)).stat().st_size / 1e6,
        }
        del be
    calls = {name: {"visual": [], "visual_batch8": [], "audio": []} for name in specs}
    for _ in range(a.rounds):
        for name, (path, backend, prec, exact) in specs.items():
            be = load_backend(path, backend, prec, a.threads, exact_qdq=exact)
            x, x8 = example_inputs(be.cfg, n=1), example_inputs(be.cfg, n=8)
            c = calls[name]
            c["visual"].append(
                call_times(lambda be=be, x=x: be.encode_preprocessed(x["frames"]), a.warmup, a.runs, a.warmup_s)
            )
            # batch 8: offline use (indexing footage, evaluation), where per-call overhead is shared
            c["visual_batch8"].append(
                call_times(
                    lambda be=be, x8=x8: be.encode_preprocessed(x8["frames"]), a.warmup, max(5, a.runs // 4), a.warmup_s
                )
            )
            c["audio"].append(call_times(lambda be=be, x=x: be.encode_audio(x["mel"]), a.warmup, a.runs, a.warmup_s))
            be = None  # an idle backend's threads would slow the next one
    base = [np.median(t) for t in calls.get("onnxruntime fp32", {}).get("visual", [])]
    for name, (path, backend, prec, exact) in specs.items():
        r = rows[name]
        r.update({k: summarize_rounds(v) for k, v in calls[name].items()})
        if base:
            r["visual_ort_fp32_ratio"] = round_ratio([np.median(t) for t in calls[name]["visual"]], base)
        res = run(
            RunConfig(
                str(DEFAULT_CLIP),
                model=path,
                backend=backend,
                precision=prec,
                quiet=True,
                threads=a.threads,
                qdq={None: "auto", True: "exact", False: "fused"}[exact],
            )
        )
        r["pipeline"] = res.summary()
        print(
            model,
            name,
            f"visual p50 {r['visual']['p50_ms']:.3f} ms, audio p50 {r['audio']['p50_ms']:.3f} ms",
            flush=True,
        )
    return rows


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"Machine: {m['cpu']} ({', '.join(m['isa'])}), {result['threads']} threads, batch 1; "
        f"{result.get('rounds', 1)} interleaved rounds of {result['runs']} timed calls per variant after "
        f"{result['warmup']} warm-up calls and at least {result.get('warmup_s', 0)} s of them; p50 = median of "
        f"the rounds' medians; / ORT FP32: the median over rounds of the round's ratio of visual p50s. "
        f"Command: `{result['command']}`.",
        "",
        "| model | backend | size (MB) | visual p50 / p95 / p99 ms | visual / ORT FP32 | visual windows/s | "
        "visual windows/s at batch 8 | audio p50 ms | run pipeline total p50 / p95 ms (decode, preprocess, encode, "
        "search p50) | run windows/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, rows in result["models"].items():
        for name, r in rows.items():
            if r["status"] != "ok":
                lines.append(f"| {model} | {name} | – | unavailable: {r['reason']} | | | | | | |")
                continue
            s = r["pipeline"]["latency_ms"]
            v = r["visual"]
            d = 3 if v["p50_ms"] < 1 else 2  # a student's tenth of a millisecond needs the third decimal
            lines.append(
                f"| {model} | {name} | {r['file_mb']:.2f} | {v['p50_ms']:.{d}f} / "
                f"{v['p95_ms']:.{d}f} / {v['p99_ms']:.{d}f} | {r.get('visual_ort_fp32_ratio', float('nan')):.2f}"
                f" | {v['windows_per_s']:.0f}"
                f" | {8 * 1000 / r['visual_batch8']['p50_ms']:.0f} | {r['audio']['p50_ms']:.2f}"
                f" | {s['total']['p50']:.1f} / {s['total']['p95']:.1f} "
                f"({s['decode']['p50']:.1f}, {s['preprocess']['p50']:.1f}, {s['encode']['p50']:.1f}, "
                f"{s['search']['p50']:.2f}) | {r['pipeline']['windows_per_s']:.1f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["teacher", "student", "student_mobile", "student_small"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=100, help="timed calls per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--warmup-s", type=float, default=0.2, help="and warm up for at least this many seconds")
    ap.add_argument("--exports", default="exports")
    ap.add_argument("--corpus", default=None, help="corpus root (INT8 calibration on its train clips)")
    ap.add_argument("--calib-windows", type=int, default=256)
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)

    import torch

    torch.set_num_threads(a.threads)
    result = {
        "machine": machine(),
        "threads": a.threads,
        "batch": 1,
        "runs": a.runs,
        "rounds": a.rounds,
        "warmup": a.warmup,
        "warmup_s": a.warmup_s,
        "models": {m: measure(m, a) for m in a.models},
        "command": command_line("latency", argv),
    }
    md = markdown(result)
    write_result("latency", result, md, a.out)


if __name__ == "__main__":
    main()
