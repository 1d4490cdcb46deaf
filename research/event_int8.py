"""Which parts of the event head's frame graph should INT8 quantize? The same FP32 export and calibration quantized
in both INT8 forms (ONNX Runtime's CPU form, TensorRT's Q/DQ form run exactly) with the attention pooling after the
last conv stage (score conv, softmax, weighted sum and max over positions, output layer) quantized or kept in
float; each run end to end (`edgeav run --events-only`) on the corpus's val clips — model selection, never test —
beside FP32: detection F1 and events found and right at top-1. Per-frame cost of each form, interleaved.

Writes results/event_int8.{json,md}.

    python -m research.event_int8 --model student
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.common import calibration_videos, command_line, int8_export, machine, write_result
from research import RESULTS


def variants(model: str, exports: str, corpus: str | None, windows: int) -> dict[str, str]:
    """name → sidecar: FP32 and the four INT8 variants of one FP32 export, one calibration."""
    from edgeav.export.quantize import quantize_int8

    fp32, _ = int8_export(model, exports, corpus, windows, "int8-cpu")
    videos = calibration_videos(corpus) or []
    out = {"FP32": fp32}
    for target, form in (("cpu", "int8-cpu"), ("tensorrt", "int8 Q/DQ")):
        for pooling_float in (False, True):
            stem = Path(exports) / "event_int8" / f"{target}-{'pool-float' if pooling_float else 'all'}"
            stem.parent.mkdir(parents=True, exist_ok=True)
            quantize_int8(fp32, stem, videos, windows, target, float_event_pooling=pooling_float)
            name = f"{form}, pooling {'float' if pooling_float else 'INT8'}"
            out[name] = str(stem.with_suffix(".onnx.json"))
    return out


def main(argv: list[str] | None = None) -> dict:
    from benchmarks.event_latency import per_frame
    from benchmarks.events import end_to_end
    from benchmarks.value import corpus_bank
    from edgeav.backends import load_backend
    from edgeav.io import VideoFile
    from edgeav_train.corpus import corpus_root, load_clips

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="student")
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--exports", default="exports")
    ap.add_argument("--calib-windows", type=int, default=256)
    ap.add_argument("--bank-cache", default=".cache/value")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=300)
    a = ap.parse_args(argv)
    root = corpus_root(a.corpus)
    sides = variants(a.model, a.exports, str(root), a.calib_windows)
    bank = corpus_bank(a.model, root, Path(a.bank_cache))
    val = load_clips(root, "val")
    rows = {name: end_to_end(side, bank, val)["all"] for name, side in sides.items()}
    backends = {name: load_backend(side, threads=a.threads) for name, side in sides.items()}
    cfg = next(iter(backends.values())).cfg
    v = VideoFile(str(val[0].video), fps=cfg.event_fps, size=cfg.frame_size)
    frames = np.stack([f for _, f in v.frames(0, 20)])
    v.close()
    timing = per_frame(backends, frames, a.rounds, a.calls)
    res = {
        "model": a.model,
        "clips": len(val),
        "machine": machine(),
        "threads": a.threads,
        "rows": {k: {**rows[k], "ms_per_frame_p50": timing[k]["p50_ms"]} for k in sides},
    }
    write_result("event_int8", res, markdown(res, command_line("research.event_int8", argv)), RESULTS)
    return res


def markdown(res: dict, cmd: str) -> str:
    lines = [
        f"The event head's frame graph in INT8, `{res['model']}`: `edgeav run --events-only` on the corpus's "
        f"{res['clips']} val clips (model selection), event lines matched within ±80 ms; ms per frame: one frame "
        f"pass + the temporal head, batch 1, {res['threads']} threads, median of interleaved rounds. Machine: "
        f"{res['machine']['cpu']} ({', '.join(res['machine']['isa'])}).",
        "",
        "| form | P / R / F1 | found & right at top-1 | ms per frame (p50) |",
        "|---|---|---|---|",
    ]
    for name, r in res["rows"].items():
        lines.append(
            f"| {name} | {r['precision']:.2f} / {r['recall']:.2f} / **{r['f1']:.3f}** | "
            f"{r['found_and_right']:.3f} | {r['ms_per_frame_p50']:.3f} |"
        )
    return "\n".join(lines + ["", f"Command: `{cmd}`"])


if __name__ == "__main__":
    main()
