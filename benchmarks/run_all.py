"""Regenerate every benchmark result, table and plot in one go (also `edgeav bench`): latency → accuracy → peak →
bank scale → training → value → events → event latency → report. Adaptation (leave one game out: hours of
training) is its own script, `python -m benchmarks.adapt`.

    python -m benchmarks.run_all                      # the README's numbers (about 40 min on 2 cores)
"""

from __future__ import annotations

import argparse
import time

from benchmarks import accuracy, bank_scale, event_latency, events, latency, peak, report, training, value
from benchmarks.common import RESULTS

STEPS = ("latency", "accuracy", "peak", "bank_scale", "training", "value", "events", "event_latency", "report")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["teacher", "student", "student_mobile", "student_small"])
    ap.add_argument("--corpus", default=None, help="corpus root (default ../shared/data/gameplay)")
    ap.add_argument("--value-model", default="student", help="the model of the value report (calibrated placements)")
    ap.add_argument("--cache", default=".cache/gameplay", help="training cache for the training benchmark")
    ap.add_argument("--sounds", default=None, help="sound library for the training benchmark")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--bank-sizes", nargs="+", type=int, default=[1000, 10_000, 100_000, 1_000_000])
    ap.add_argument("--train-steps", type=int, default=60)
    ap.add_argument(
        "--train-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="extra arguments for benchmarks.training (must come last)",
    )
    ap.add_argument("--events-cache", default=".cache/gameplay-25", help="frame-rate cache (built if missing)")
    ap.add_argument("--exports", default="exports")
    ap.add_argument("--eval-cache", default=".cache/eval")
    ap.add_argument("--calib-windows", type=int, default=256)
    ap.add_argument("--skip", nargs="*", default=[], choices=STEPS)
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    common = ["--out", a.out]
    corpus = ["--corpus", a.corpus] if a.corpus else []
    jobs = {
        "latency": lambda: latency.main(
            [
                "--models",
                *a.models,
                "--threads",
                str(a.threads),
                "--runs",
                str(a.runs),
                "--exports",
                a.exports,
                "--calib-windows",
                str(a.calib_windows),
                *corpus,
                *common,
            ]
        ),
        "accuracy": lambda: accuracy.main(
            [
                "--models",
                *a.models,
                "--threads",
                str(a.threads),
                "--exports",
                a.exports,
                "--calib-windows",
                str(a.calib_windows),
                "--eval-cache",
                a.eval_cache,
                *corpus,
                *common,
            ]
        ),
        "peak": lambda: peak.main(["--threads", str(a.threads), *common]),
        "bank_scale": lambda: bank_scale.main(
            ["--sizes", *map(str, a.bank_sizes), "--threads", str(a.threads), *common]
        ),
        "training": lambda: training.main(
            [
                "--cache",
                a.cache,
                "--steps",
                str(a.train_steps),
                "--threads",
                str(a.threads),
                *(["--sounds", a.sounds] if a.sounds else []),
                *a.train_args,
                *common,
            ]
        ),
        "value": lambda: value.main(["--model", a.value_model, *corpus, "--cache", a.eval_cache, *common]),
        "events": lambda: events.main(
            ["--model", a.value_model, "--cache", a.events_cache, "--bank-cache", a.eval_cache, *corpus, *common]
        ),
        "event_latency": lambda: event_latency.main(
            [
                *("--model", a.value_model, "--threads", str(a.threads), "--exports", a.exports),
                *("--calls", str(3 * a.runs), "--calib-windows", str(a.calib_windows), "--bank-cache", a.eval_cache),
                *corpus,
                *common,
            ]
        ),
        "report": lambda: report.main(common),
    }
    for name in STEPS:
        if name in a.skip:
            continue
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        jobs[name]()
        print(f"== {name} done in {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
