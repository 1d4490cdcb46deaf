"""What does the deploy form buy? Each model's visual encoder exported with the same weights as trained (BatchNorm
folded by the exporter, nothing else) and as `edgeav export` writes it (edgeav.models.rep.deploy_form: Rep branches,
the frame difference and the attention head folded); for attention models also with the head's score computed as
a 1×1 conv, then a product and a sum (the conv-score head), to show what the head's matmul form buys. Timed in ONNX
Runtime at
FP32 and in the INT8 CPU form, batch 1, interleaved in one run (benchmarks.common.time_interleaved). The INT8 graphs
are calibrated on random inputs: this measures speed only (benchmarks/accuracy.py measures what INT8 keeps). Writes
results/deploy_form.{json,md}.

    python -m research.deploy_form --models student student_mobile --threads 2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import command_line, machine, paired_ratio, time_interleaved, write_result
from research import RESULTS


def export_visual(model, path: Path) -> Path:
    import torch

    from edgeav.export.onnx_export import _export, _Visual, example_inputs, visual_outputs

    x = torch.from_numpy(example_inputs(model.cfg, n=1)["frames"])
    _export(_Visual(model).eval(), x, path, "frames", visual_outputs(model.cfg))
    return path


def int8_cpu(src: Path, dst: Path, shape: tuple[int, ...]) -> Path:
    """The `edgeav export --format int8-cpu` form (first conv in float), calibrated on random frames."""
    from onnxruntime.quantization import quantize_static

    from edgeav.export.quantize import CalibrationReader, _constants_as_initializers, float_nodes, quant_form

    rng = np.random.default_rng(0)
    tmp = _constants_as_initializers(src, dst.with_suffix(".src.onnx"))
    quantize_static(
        str(tmp),
        str(dst),
        CalibrationReader("frames", [rng.standard_normal((4, *shape)).astype(np.float32)]),
        nodes_to_exclude=float_nodes(tmp),
        **quant_form("cpu"),
    )
    return dst


def conv_score_head(model):
    """`model` (a deploy form) with its attention heads computed as a conv-score head — the score as a 1×1 conv, then
    a product and a sum over the NCHW map (attention.attend) — instead of matmuls over positions × channels."""
    import types

    import torch
    import torch.nn.functional as F

    from edgeav.models.attention import attend

    def forward(self, feats):
        pooled, maps = [], []
        for score, f in zip(self.scores, feats):
            v, a = attend(F.conv2d(f, score.weight[:, :, None, None]), f)
            pooled.append(v)
            maps.append(a)
        return self.out(torch.cat(pooled, dim=1)), maps

    for enc in (model.visual, model.audio):
        enc.head.forward = types.MethodType(forward, enc.head)
    return model


FORMS = ("as trained", "deploy form", "deploy form, conv-score head")


def measure(name: str, threads: int, rounds: int, calls: int) -> list[dict]:
    import onnx
    import torch

    from edgeav.export.onnx_export import example_inputs
    from edgeav.models import load_model
    from edgeav.models.rep import deploy_form

    trained = load_model(name)
    w, h = trained.cfg.frame_size
    shape = (trained.cfg.visual_frames, 3, h, w)
    models = {FORMS[0]: trained, FORMS[1]: deploy_form(trained)}
    if trained.cfg.attention:
        models[FORMS[2]] = conv_score_head(deploy_form(trained))
    x = torch.from_numpy(example_inputs(trained.cfg, n=2)["frames"])
    graphs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (form, m) in enumerate(models.items()):
            with torch.no_grad():  # every form computes the same function
                assert float((m.encode_visual(x) - trained.encode_visual(x)).abs().max()) < 1e-5, (name, form)
            fp32 = export_visual(m, Path(tmp) / f"{i}.onnx")
            graphs[form, "fp32"], graphs[form, "int8"] = fp32, int8_cpu(fp32, Path(tmp) / f"{i}-int8.onnx", shape)
        t = time_interleaved(graphs, shape, threads, rounds, calls)
        nodes = {k: len(onnx.load(str(p)).graph.node) for k, p in graphs.items()}
    rows = []
    for form in models:
        rows.append(
            {
                "model": name,
                "graph": form,
                "nodes_fp32": nodes[form, "fp32"],
                "nodes_int8": nodes[form, "int8"],
                "fp32_ms": t[form, "fp32"]["p50_ms"],
                "int8_ms": t[form, "int8"]["p50_ms"],
                "fp32_p95_ms": t[form, "fp32"]["p95_ms"],
                "int8_p95_ms": t[form, "int8"]["p95_ms"],
                "int8_fp32_ratio": paired_ratio(t, (form, "int8"), (form, "fp32")),
            }
        )
        print(rows[-1], flush=True)
    return rows


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"Machine: {m['cpu']} ({', '.join(m['isa'])}), {result['threads']} threads, batch 1; visual encoder, "
        f"ONNX Runtime CPU; a model's graphs timed interleaved, p50 = median of {result['rounds']} "
        f"rounds' medians of {result['calls']} calls (p95 over all calls); INT8 / FP32: the median of the rounds' "
        f"ratios. Command: `{result['command']}`.",
        "",
        "| model | graph | nodes FP32 / INT8 | FP32 ms | INT8 CPU form ms | INT8 / FP32 |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['model']} | {r['graph']} | {r['nodes_fp32']} / {r['nodes_int8']} | {r['fp32_ms']:.3f} "
            f"({r['fp32_p95_ms']:.3f}) | {r['int8_ms']:.3f} ({r['int8_p95_ms']:.3f}) | "
            f"{r['int8_fp32_ratio']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["student", "student_mobile", "student_small", "teacher"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    rows = [r for name in a.models for r in measure(name, a.threads, a.rounds, a.calls)]
    result = {
        "machine": machine(),
        "threads": a.threads,
        "rounds": a.rounds,
        "calls": a.calls,
        "rows": rows,
        "command": command_line("research.deploy_form", argv),
    }
    write_result("deploy_form", result, markdown(result), a.out)


if __name__ == "__main__":
    main()
