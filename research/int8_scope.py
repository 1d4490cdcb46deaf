"""Which ops should ONNX Runtime's INT8 CPU form quantize? The same FP32 export and calibration quantized two ways —
the backbones' ops only (edgeav.export.quantize.CPU_QUANT_OPS, what `edgeav export --format int8-cpu` writes) and
every op the quantizer takes (the attention head's matmuls, softmax and Gemm too) — timed against FP32 on the
visual encoder at batch 1, and, where the corpus is present, evaluated on its test split. The shipped graph is also
timed with ONNX Runtime's QDQ propagation left on (edgeav.backends.onnx_backend.CPU_FORM_DISABLED_OPTIMIZERS turns it
off for the CPU form); "nodes" counts the graph ONNX Runtime runs after its optimizations.

Timing interleaves the graphs (benchmarks.common.time_interleaved). Writes results/int8_scope.{json,md}.

    python -m research.int8_scope --models student --threads 2 1
"""

from __future__ import annotations

import argparse
import functools
import tempfile
from pathlib import Path

from benchmarks.common import (
    calibration_videos,
    command_line,
    machine,
    model_stem,
    paired_ratio,
    time_interleaved,
    write_result,
)
from research import RESULTS


@functools.cache
def _eval_inputs(corpus: str | None, eval_cache: str):
    """The test split's evaluation inputs, loaded once for every graph evaluated."""
    from edgeav_train.evaluate import load_inputs

    return load_inputs(corpus, (128, 96), (0.2, 0.4), cache_dir=eval_cache)


def accuracy(sidecar: str, precision: str, corpus: str | None, threads: int, eval_cache: str) -> dict | None:
    from edgeav_train.corpus import corpus_root

    if not (corpus_root(corpus) / "splits.csv").exists():
        return None
    from edgeav.backends import load_backend
    from edgeav.models import load_model
    from edgeav_train.evaluate import BackendModel, VisualCache, evaluate

    be = load_backend(sidecar, "onnx", precision, threads)
    teacher = be.card.teacher
    r = evaluate(
        BackendModel(be),
        _eval_inputs(corpus, eval_cache),
        corpus,
        VisualCache(eval_cache),
        bank_model=load_model(teacher) if teacher else None,
    )
    return {
        "top1_file": r["model"]["top1_file"],
        "top1_file_macro": r["model"]["top1_file_macro"],
        "top5_file": r["model"]["top5_file"],
        "correlation_acc": r["correlation"]["correlation_acc"],
    }


def measure(model: str, a, tmp: Path) -> list[dict]:
    import json

    import onnx

    from edgeav.backends.onnx_backend import ort_session
    from edgeav.defaults import DEFAULT_CLIP
    from edgeav.export.onnx_export import export_onnx
    from edgeav.export.quantize import CPU_QUANT_OPS, quantize_int8

    name = model_stem(model)
    side = export_onnx(model, tmp / f"{name}-fp32")
    fp32 = tmp / f"{name}-fp32.onnx.json"
    videos = calibration_videos(a.corpus) or [str(DEFAULT_CLIP)]
    sidecars = {"FP32": fp32}
    for label, ops, tag in (("backbone ops (shipped)", CPU_QUANT_OPS, "backbone"), ("every op", None, "all")):
        quantize_int8(fp32, tmp / f"{name}-{tag}", videos, a.calib_windows, "cpu", cpu_ops=ops)
        sidecars[label] = tmp / f"{name}-{tag}.onnx.json"
    graphs = {k: p.parent / json.loads(p.read_text())["files"]["visual"] for k, p in sidecars.items()}
    propagated = "backbone ops, QDQ propagation on"  # the same graph with ORT's QDQ propagation on
    graphs[propagated], sidecars[propagated] = graphs["backbone ops (shipped)"], None
    session_args = {propagated: {"cpu_form": False}}
    t, _, h, w = side["inputs"]["frames"]["shape"][1:]
    times = {
        (n, b): time_interleaved(
            graphs, (t, 3, h, w), n, a.rounds, a.calls if b == 1 else a.calls // 4, batch=b, session_args=session_args
        )
        for n in a.threads
        for b in (1, 8)
    }
    rows = []
    for k, p in sidecars.items():
        acc = (
            None
            if a.no_accuracy or p is None
            else accuracy(str(p), "fp32" if k == "FP32" else "int8", a.corpus, max(a.threads), a.eval_cache)
        )
        timed = {
            f"{n} threads, batch {b}": {**times[n, b][k], "fp32_ratio": paired_ratio(times[n, b], k, "FP32")}
            for n, b in times
        }
        ran = tmp / f"{name}-ran.onnx"
        ort_session(graphs[k], 1, **session_args.get(k, {"cpu_form": True}), save_optimized=ran)
        rows.append(
            {"model": name, "graph": k, "nodes": len(onnx.load(str(ran)).graph.node), "timing": timed, "accuracy": acc}
        )
        print(rows[-1], flush=True)
    return rows


def markdown(result: dict) -> str:
    m = result["machine"]
    threads = result["threads"]
    lines = [
        f"Machine: {m['cpu']} ({', '.join(m['isa'])}), batch 1; visual encoder, ONNX Runtime CPU; p50 ms = "
        f"median over {result['rounds']} interleaved rounds of each round's median of {result['calls']} calls, "
        f"at {' and '.join(map(str, threads))} thread(s); batch 8: a quarter of the calls. Accuracy: test split, "
        f"top-1 / macro top-1 / top-5 file accuracy, correlation accuracy. Fastest round: the lowest "
        f"round median, this shared machine's quiet spells (two threads alternate between a fast and a slow "
        "regime within a run). (/ FP32): the median over rounds of the round's ratio to FP32. "
        f"Command: `{result['command']}`.",
        "",
        "| model | graph | nodes | "
        + " | ".join(
            f"{n} thr.: batch 1 p50 ms, median / fastest round (/ FP32) | batch 8 windows/s (/ FP32)" for n in threads
        )
        + " | top-1 | macro top-1 | top-5 | corr. acc |",
        "|---|---|---|" + "---|" * (2 * len(threads) + 4),
    ]
    for r in result["rows"]:
        acc = r["accuracy"]
        cells = (
            [f"{acc[k]:.3f}" for k in ("top1_file", "top1_file_macro", "top5_file", "correlation_acc")]
            if acc
            else ["not measured"] + [""] * 3
        )
        timed = []
        for n in threads:
            one, eight = r["timing"][f"{n} threads, batch 1"], r["timing"][f"{n} threads, batch 8"]
            timed += [
                f"{one['p50_ms']:.3f} / {min(one['rounds_p50_ms']):.3f} ({one['fp32_ratio']:.2f})",
                f"{eight['windows_per_s']:,.0f} ({1 / eight['fp32_ratio']:.2f})",
            ]
        lines.append(f"| {r['model']} | {r['graph']} | {r['nodes']} | " + " | ".join(timed + cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["student"])
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--calib-windows", type=int, default=256)
    ap.add_argument("--corpus", default=None, help="corpus root (default ../shared/data/gameplay)")
    ap.add_argument("--no-accuracy", action="store_true", help="time only")
    ap.add_argument("--eval-cache", default=".cache/eval")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [r for name in a.models for r in measure(name, a, Path(tmp))]
    result = {
        "machine": machine(),
        "threads": a.threads,
        "rounds": a.rounds,
        "calls": a.calls,
        "rows": rows,
        "command": command_line("research.int8_scope", argv),
    }
    write_result("int8_scope", result, markdown(result), a.out)


if __name__ == "__main__":
    main()
