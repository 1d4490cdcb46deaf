"""Shared by the benchmark scripts: timing (warm up, then time), the machine's description, the exported artifacts
every script measures (one INT8 calibration per model), and result files."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


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

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.processor())
    flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "isa": [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]}


def calibration_videos(corpus: str | None, n: int = 8) -> list[str] | None:
    """INT8 calibration footage: `n` train-split clips of the corpus spread over its games (never test footage);
    None (the bundled clip) when the corpus is absent."""
    from distill.corpus import corpus_root, load_clips

    if not (corpus_root(corpus) / "splits.csv").exists():
        return None
    clips = load_clips(corpus, "train")
    by_game: dict[str, list] = {}
    for c in clips:
        by_game.setdefault(c.game, []).append(c)
    picked, i = [], 0
    while len(picked) < min(n, len(clips)):
        for g in sorted(by_game):
            if i < len(by_game[g]) and len(picked) < n:
                picked.append(str(by_game[g][i].video))
        i += 1
    return picked


def int8_export(model: str, exports: str | Path, corpus: str | None = None, windows: int = 256,
                fmt: str = "int8") -> tuple[str, str]:
    """(fp32 sidecar, int8 sidecar) of `model` under `exports` — `fmt` int8 (TensorRT's Q/DQ form) or int8-cpu
    (ONNX Runtime's CPU form) — made once and reused by every benchmark."""
    from edgeav.export.formats import export

    stem = Path(exports) / f"{model_stem(model)}-{fmt}"
    int8, fp32 = f"{stem}.onnx.json", f"{stem}-fp32.onnx.json"
    if not (_current(int8, model, windows) and Path(fp32).exists()):
        export(model, fmt, str(stem), calibration_videos(corpus), windows)
    return fp32, int8


def _current(sidecar: str, model: str, windows: int) -> bool:
    """An existing export is reused only if it was made from these weights, with this quantizer and calibration."""
    from edgeav.atomic import sha1_file
    from edgeav.export.onnx_export import GRAPH_FORM
    from edgeav.models.store import resolve_model_path

    p = Path(sidecar)
    if not p.exists():
        return False
    side = json.loads(p.read_text())
    return (side.get("source_weights_sha1") == sha1_file(resolve_model_path(model)) and "quant_target" in side
            and side.get("graph_form") == GRAPH_FORM
            and side.get("calibration", {}).get("windows") == windows)


def model_stem(model: str) -> str:
    """A file-name stem for a registry name or a weights path (runs/x/model.safetensors → x)."""
    p = Path(model)
    return p.parent.name if p.stem == "model" and p.parent.name else p.stem


def export_size_mb(sidecar: str) -> float:
    side = json.loads(Path(sidecar).read_text())
    return sum((Path(sidecar).parent / f).stat().st_size for f in side["files"].values()) / 1e6


def command_line(module: str, argv: list[str] | None) -> str:
    """The command that reproduces a benchmark's result, recorded in its JSON and markdown."""
    import shlex
    import sys

    return f"python -m benchmarks.{module} " + shlex.join(argv if argv is not None else sys.argv[1:])


def write_result(name: str, data: dict, markdown: str, out_dir: str | Path = RESULTS) -> None:
    """results/NAME.json and NAME.md (atomic JSON), and the markdown printed."""
    from edgeav.atomic import write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / f"{name}.json", data)
    (out_dir / f"{name}.md").write_text(markdown)
    print(markdown)
