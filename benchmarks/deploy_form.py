"""What does the deploy form buy? Each model's visual encoder exported twice with the same weights — as trained
(BatchNorm folded by the exporter, nothing else) and as `edgeav export` writes it (edgeav.models.rep.deploy_form:
Rep branches, the frame difference and the attention head folded) — and timed in ONNX Runtime at FP32 and in the
INT8 CPU form, batch 1, in one run. The INT8 graphs are calibrated on random inputs: this measures speed only
(benchmarks/accuracy.py measures what INT8 keeps). Writes results/deploy_form.{json,md}.

    python -m benchmarks.deploy_form --models student student_mobile --threads 2
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, command_line, machine, time_fn, write_result


def export_visual(model, path: Path) -> Path:
    import torch

    from edgeav.export.onnx_export import _Visual, _export, example_inputs, visual_outputs

    x = torch.from_numpy(example_inputs(model.cfg, n=1)["frames"])
    _export(_Visual(model).eval(), x, path, "frames", visual_outputs(model.cfg))
    return path


def int8_cpu(src: Path, dst: Path, shape: tuple[int, ...]) -> Path:
    """The `edgeav export --format int8-cpu` form (first conv in float), calibrated on random frames."""
    from onnxruntime.quantization import quantize_static

    from edgeav.export.quantize import _Reader, _constants_as_initializers, float_nodes, quant_form

    rng = np.random.default_rng(0)
    tmp = _constants_as_initializers(src, dst.with_suffix(".src.onnx"))
    quantize_static(str(tmp), str(dst), _Reader("frames", [rng.standard_normal((4, *shape)).astype(np.float32)]),
                    nodes_to_exclude=float_nodes(tmp), **quant_form("cpu"))
    return dst


def time_graph(path: Path, shape: tuple[int, ...], threads: int, warmup: int, runs: int) -> tuple[dict, int]:
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((1, *shape)).astype(np.float32)
    return time_fn(lambda: sess.run(None, {"frames": x}), warmup, runs), len(onnx.load(str(path)).graph.node)


def measure(name: str, threads: int, warmup: int, runs: int) -> list[dict]:
    from edgeav.models import load_model
    from edgeav.models.rep import deploy_form

    trained = load_model(name)
    w, h = trained.cfg.frame_size
    shape = (trained.cfg.visual_frames, 3, h, w)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for form, m in (("as trained", trained), ("deploy form", deploy_form(trained))):
            fp32 = export_visual(m, Path(tmp) / f"{form[:2]}.onnx")
            int8 = int8_cpu(fp32, Path(tmp) / f"{form[:2]}-int8.onnx", shape)
            (t32, n32), (t8, n8) = (time_graph(p, shape, threads, warmup, runs) for p in (fp32, int8))
            rows.append({"model": name, "graph": form, "nodes_fp32": n32, "nodes_int8": n8,
                         "fp32_ms": t32["p50_ms"], "int8_ms": t8["p50_ms"],
                         "fp32_p95_ms": t32["p95_ms"], "int8_p95_ms": t8["p95_ms"]})
            print(rows[-1], flush=True)
    return rows


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"Machine: {m['cpu']} ({', '.join(m['isa'])}), {result['threads']} threads, batch 1; visual encoder, "
             f"ONNX Runtime CPU, p50 (p95) ms over {result['runs']} runs. Command: `{result['command']}`.", "",
             "| model | graph | nodes FP32 / INT8 | FP32 ms | INT8 CPU form ms | INT8 / FP32 |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['model']} | {r['graph']} | {r['nodes_fp32']} / {r['nodes_int8']} | {r['fp32_ms']:.3f} "
                     f"({r['fp32_p95_ms']:.3f}) | {r['int8_ms']:.3f} ({r['int8_p95_ms']:.3f}) | "
                     f"{r['int8_ms'] / r['fp32_ms']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["student", "student_mobile", "student_small", "teacher"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    rows = [r for name in a.models for r in measure(name, a.threads, a.warmup, a.runs)]
    result = {"machine": machine(), "threads": a.threads, "runs": a.runs, "rows": rows,
              "command": command_line("deploy_form", argv)}
    write_result("deploy_form", result, markdown(result), a.out)


if __name__ == "__main__":
    main()
