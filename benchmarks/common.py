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
# the lab's corpus: the workspace's ../shared/data/gameplay unless EDGEAV_CORPUS or --corpus names another
os.environ.setdefault("EDGEAV_CORPUS", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "gameplay"))


def call_times(fn, warmup: int, runs: int, warmup_s: float = 0.0) -> list[float]:
    """ms of each of `runs` calls, after `warmup` calls and at least `warmup_s` seconds of them: a call of a fraction
    of a millisecond needs more than a few calls before thread pools and caches settle."""
    t_end = time.perf_counter() + warmup_s
    done = 0
    while done < warmup or time.perf_counter() < t_end:
        fn()
        done += 1
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return ts


def time_fn(fn, warmup: int, runs: int, warmup_s: float = 0.0) -> dict:
    """p50/p95/p99 ms and windows/s of `runs` calls (after warming up: call_times)."""
    return summarize_rounds([call_times(fn, warmup, runs, warmup_s)])


def summarize_rounds(rounds: list[list[float]]) -> dict:
    """Call times (ms) from interleaved rounds: p50 is the median of the rounds' medians (a round that met a burst
    of load on this shared machine counts once, like any other), p95/p99 over every call."""
    every = np.concatenate(rounds)
    p50 = float(np.median([np.median(r) for r in rounds]))
    return {
        "p50_ms": p50,
        "p95_ms": float(np.percentile(every, 95)),
        "p99_ms": float(np.percentile(every, 99)),
        "windows_per_s": 1e3 / p50,
        "runs": int(len(every)),
        "rounds": len(rounds),
    }


def time_interleaved(
    graphs: dict[str, Path],
    shape: tuple[int, ...],
    threads: int,
    rounds: int,
    calls: int,
    warmup: int = 50,
    batch: int = 1,
    session_args: dict[str, dict] | None = None,
) -> dict[str, dict]:
    """ONNX graphs taking one input of `shape` (per window; `batch` windows per call) timed in rounds of (fresh
    session, warm-up, `calls` timed calls) over every graph in turn, so a change in this shared machine's load lands
    on all of them alike. p50: the median of the per-round medians; p95 over all calls. Sessions are made as the
    backend makes the CPU form's (edgeav.backends.onnx_backend.ort_session); `session_args` overrides that per graph
    name."""
    from edgeav.backends.onnx_backend import ort_session

    x = np.random.default_rng(1).standard_normal((batch, *shape)).astype(np.float32)
    per_round: dict[str, list[float]] = {k: [] for k in graphs}
    every: dict[str, list[float]] = {k: [] for k in graphs}
    for _ in range(rounds):
        for name, path in graphs.items():
            sess = ort_session(path, threads, **(session_args or {}).get(name, {"cpu_form": True}))
            feed = {sess.get_inputs()[0].name: x}
            for _ in range(warmup):
                sess.run(None, feed)
            ts = []
            for _ in range(calls):
                t0 = time.perf_counter()
                sess.run(None, feed)
                ts.append((time.perf_counter() - t0) * 1e3)
            per_round[name].append(float(np.median(ts)))
            every[name] += ts
            del sess  # an idle session's spinning threads would slow the next one
    return {
        k: {
            "p50_ms": float(np.median(v)),
            "p95_ms": float(np.percentile(every[k], 95)),
            "windows_per_s": batch * 1e3 / float(np.median(v)),
            "rounds_p50_ms": v,
        }
        for k, v in per_round.items()
    }


def round_ratio(rounds_p50: list[float], base_p50: list[float]) -> float:
    """The median over interleaved rounds of one variant's p50 / the base's p50 in the same round: each ratio
    compares the two under the same machine load."""
    return float(np.median(np.array(rounds_p50) / np.array(base_p50)))


def paired_ratio(times: dict[str, dict], graph: str, base: str) -> float:
    """round_ratio of two graphs timed by time_interleaved."""
    return round_ratio(times[graph]["rounds_p50_ms"], times[base]["rounds_p50_ms"])


def whole_call_rounds(forms: dict, rounds: int, base: str) -> dict:
    """Interleaved rounds of whole calls (`forms`: name → a function of no arguments), each timed once per round by
    wall clock and by CPU time (this process's threads and the child processes that ended within the call; the
    children's part also apart). Per form: the medians and `speed`, the median over rounds of `base`'s wall time /
    the form's in the same round."""

    def cpu() -> tuple[float, float]:
        t = os.times()
        return t.user + t.system, t.children_user + t.children_system

    times: dict[str, list[tuple[float, float, float]]] = {k: [] for k in forms}  # (wall, own CPU, children's CPU)
    for _ in range(rounds):
        for name, fn in forms.items():
            t0, (own0, kids0) = time.perf_counter(), cpu()
            fn()
            wall, (own1, kids1) = time.perf_counter() - t0, cpu()
            times[name].append((wall, own1 - own0, kids1 - kids0))
    base_s = np.array([w for w, _, _ in times[base]])
    return {
        k: {
            "median_s": float(np.median([w for w, _, _ in v])),
            "median_cpu_s": float(np.median([own + kids for _, own, kids in v])),
            "median_own_cpu_s": float(np.median([own for _, own, _ in v])),
            "median_child_cpu_s": float(np.median([kids for _, _, kids in v])),
            "speed": float(np.median(base_s / np.array([w for w, _, _ in v]))),
            "rounds_s": [w for w, _, _ in v],
            "rounds_child_cpu_s": [kids for _, _, kids in v],
        }
        for k, v in times.items()
    }


def machine() -> dict:
    import torch

    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags")), [])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "isa": [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags],
    }


def calibration_videos(corpus: str | None, n: int = 8) -> list[str] | None:
    """INT8 calibration footage: `n` train-split clips of the corpus spread over its games (never test footage);
    None (the bundled clip) when the corpus is absent."""
    from edgeav_train.corpus import corpus_root, load_clips

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


def int8_export(
    model: str, exports: str | Path, corpus: str | None = None, windows: int = 256, fmt: str = "int8"
) -> tuple[str, str]:
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
    return (
        side.get("source_weights_sha1") == sha1_file(resolve_model_path(model))
        and "quant_target" in side
        and side.get("graph_form") == GRAPH_FORM
        and side.get("calibration", {}).get("windows") == windows
    )


def model_stem(model: str) -> str:
    """A file-name stem for a registry name or a weights path (runs/x/model.safetensors → x)."""
    p = Path(model)
    return p.parent.name if p.stem == "model" and p.parent.name else p.stem


def export_size_mb(sidecar: str) -> float:
    side = json.loads(Path(sidecar).read_text())
    return sum((Path(sidecar).parent / f).stat().st_size for f in side["files"].values()) / 1e6


def command_line(module: str, argv: list[str] | None) -> str:
    """The command that reproduces a result, recorded in its JSON and markdown: `module` is a benchmark's name
    (latency) or a dotted module (research.int8_scope)."""
    import shlex
    import sys

    module = module if "." in module else f"benchmarks.{module}"
    return f"python -m {module} {shlex.join(argv if argv is not None else sys.argv[1:])}".rstrip()


def write_result(name: str, data: dict, markdown: str, out_dir: str | Path = RESULTS) -> None:
    """results/NAME.json and NAME.md (atomic JSON), and the markdown printed."""
    from edgeav.atomic import write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / f"{name}.json", data)
    (out_dir / f"{name}.md").write_text(markdown)
    print(markdown)
