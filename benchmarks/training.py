"""Training throughput: samples/s of the teacher's training (stage 1, as shipped: contrastive + correspondence +
bank-mix over cached trunk features) and of each student's distillation, in one process (all threads) against two
DDP processes (torchrun, gloo, one thread each) on the same cores. Writes results/training.{json,md}.

    python -m benchmarks.training --steps 60
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, command_line, machine, write_result

REPO = Path(__file__).resolve().parents[1]


def job_args(kind: str, model: str, a, out: str) -> list[str]:
    common = [
        "--cache",
        a.cache,
        "--out",
        out,
        "--steps",
        str(a.steps),
        "--progress",
        "0",
        "--log_every",
        str(a.log_every),
        "--ckpt_every",
        str(10**6),
    ]
    if kind == "teacher":
        return [
            "edgeav_train.train",
            "--model",
            model,
            "--w_mix",
            "1.0",
            "--mix_sounds",
            a.sounds,
            *common,
            *(["--splits", json.dumps(a.splits)] if a.splits else []),
        ]
    over = ["--overrides", a.student_overrides] if a.student_overrides else []
    return [
        "edgeav_train.student",
        "--teacher",
        a.distill_teacher,
        "--student",
        model,
        "--sounds",
        a.sounds,
        *common,
        *over,
    ]


def throughput(kind: str, model: str, procs: int, a) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        args = job_args(kind, model, a, tmp)
        threads = max(1, a.threads // procs)
        cmd = (
            [sys.executable, "-m"]
            if procs == 1
            else [
                str(Path(sys.executable).parent / "torchrun"),
                "--nproc_per_node",
                str(procs),
                "--master_port",
                str(a.port),
                "-m",
            ]
        ) + args
        r = subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)}
        )
        if r.returncode:
            raise SystemExit(f"{kind} {model} ×{procs} failed:\n{r.stderr[-1500:]}")
        recs = [json.loads(x) for x in Path(tmp, "metrics.jsonl").read_text().splitlines()]
    sps = [x["samples_per_s"] for x in recs[1:]] or [recs[-1]["samples_per_s"]]  # first interval = warm-up
    return {
        "processes": procs,
        "threads_per_process": threads,
        "samples_per_s": float(np.median(sps)),
        "intervals": len(sps),
    }


def markdown(result: dict) -> str:
    lines = [
        f"Machine: {result['machine']['cpu']}, {result['threads']} cores. Median samples/s over logging intervals "
        f"after the first. Command: `{result['command']}`.",
        "",
        "| job | model | 1 process | 2 processes (DDP, gloo) | speed-up |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        one, two = r["runs"]
        lines.append(
            f"| {r['kind']} | {r['model']} | {one['samples_per_s']:.0f} | {two['samples_per_s']:.0f} | "
            f"{two['samples_per_s'] / one['samples_per_s']:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=".cache/gameplay")
    ap.add_argument("--sounds", default=str(REPO.parent / "shared" / "data" / "gameplay" / "sounds"))
    ap.add_argument("--teacher", default="teacher", help="model trained by edgeav_train.train")
    ap.add_argument("--students", nargs="*", default=["student", "student_mobile", "student_small"])
    ap.add_argument("--distill-teacher", default="teacher")
    ap.add_argument("--student-overrides", default="")
    ap.add_argument("--splits", nargs="*", default=None)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--port", type=int, default=29531)
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    jobs = [("teacher", a.teacher)] + [("student", s) for s in a.students]
    rows = []
    for kind, model in jobs:
        rows.append({"kind": kind, "model": model, "runs": [throughput(kind, model, p, a) for p in (1, 2)]})
        print(rows[-1], flush=True)
    result = {"machine": machine(), "threads": a.threads, "rows": rows, "command": command_line("training", argv)}
    md = markdown(result)
    write_result("training", result, md, a.out)


if __name__ == "__main__":
    main()
