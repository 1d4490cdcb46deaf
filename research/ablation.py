"""The research's ablation on the gameplay corpus: baseline (no attention, correspondence loss) vs attention vs
attention + cross-modal contrastive, plus our label-free bank-mix loss; same data, same budget, several seeds.

    python -m research.ablation --steps 400 --seeds 0 1 --parallel 2

Trains each run into runs/ablation/<variant>-s<seed> (resumable), evaluates all on the test split, writes
research/results/ablation.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

VARIANTS = {
    # name: (model, train overrides)
    "baseline": ("teacher_baseline", {"w_contrastive": 0.0}),
    "attention": ("teacher", {"w_contrastive": 0.0}),
    "attention+contrastive": ("teacher", {}),
    "attention+contrastive+bankmix": ("teacher", {"w_mix": 1.0}),  # + label-free bank-mix loss (ours)
    "baseline+contrastive+bankmix": ("teacher_baseline", {"w_mix": 1.0}),
    "1frame+contrastive+bankmix": ("teacher_1frame", {"w_mix": 1.0}),  # one frame per window, as in the paper
}
# Stage 2 (edgeav_train.bank_distill) on top of a stage-1 variant: "<stage-1 variant>+bankdistill".
STAGE2 = "+bankdistill"
STAGE2_STEPS = 600
PAPER = {"correlation_acc_gain_from_attention": "+18%", "recommendation_acc_gain_from_attention": "+10%"}


def run_dir(root: Path, variant: str, seed: int) -> Path:
    return root / f"{variant.replace('+', '_')}-s{seed}"


def train_cmd(
    variant: str, seed: int, steps: int, root: Path, cache: str, sounds: Path, stage2_steps: int = STAGE2_STEPS
) -> list[str]:
    if variant.endswith(STAGE2):
        stage1 = run_dir(root, variant[: -len(STAGE2)], seed) / "model.safetensors"
        return [
            sys.executable,
            "-m",
            "edgeav_train.bank_distill",
            "--model",
            str(stage1),
            "--sounds",
            str(sounds),
            "--out",
            str(run_dir(root, variant, seed)),
            "--cache",
            cache,
            "--steps",
            str(stage2_steps),
            "--seed",
            str(seed),
        ]
    model, over = VARIANTS[variant]
    args = {
        "model": model,
        "out": str(run_dir(root, variant, seed)),
        "steps": steps,
        "seed": seed,
        "cache": cache,
        "progress": "0",
        **over,
    }
    if over.get("w_mix"):
        args["mix_sounds"] = str(sounds)
    return [sys.executable, "-m", "edgeav_train.train"] + [x for k, v in args.items() for x in (f"--{k}", str(v))]


def train_all(jobs, parallel: int, threads: int):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    running = []
    for cmd, out in jobs:
        while len(running) >= parallel:
            running = [p for p in running if p.poll() is None]
            time.sleep(5)
        Path(out).mkdir(parents=True, exist_ok=True)
        log = open(Path(out) / "train.log", "a")
        print("start", " ".join(cmd[3:]), flush=True)
        running.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
    for p in running:
        p.wait()


def summarize(results: dict) -> dict:
    keys = [
        ("model", "top1_file"),
        ("model", "top1_file_macro"),
        ("model", "top5_file"),
        ("model", "top5_file_macro"),
        ("model", "top1_category"),
        ("correlation", "correlation_acc"),
        ("retrieval", "v2a_R@10"),
    ]
    out = {}
    for variant, runs in results.items():
        out[variant] = {
            f"{k}": {
                "mean": float(np.mean([r[g][k] for r in runs])),
                "std": float(np.std([r[g][k] for r in runs])),
                "n": len(runs),
            }
            for g, k in keys
        }
    return out


def markdown(summary: dict, prior: dict, chance: dict, meta: dict) -> str:
    stage2 = meta.get("stage2_steps", STAGE2_STEPS)
    cols = [
        "top1_file",
        "top1_file_macro",
        "top5_file",
        "top5_file_macro",
        "top1_category",
        "correlation_acc",
        "v2a_R@10",
    ]
    lines = [
        f"Test split of the gameplay corpus ({meta['n_queries']} sound events, {meta['n_effects']} effects, bank of "
        f"{meta['bank_size']} clean files). Stage 1: {meta['steps']} steps × batch 128; stage 2 (bank distillation): "
        f"{stage2} steps × 256. Mean ± std over the seeds each row has (n).",
        "",
        "| variant | n | " + " | ".join(cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    for v, s in summary.items():
        lines.append(
            f"| {v} | {s[cols[0]]['n']} | "
            + " | ".join(f"{s[c]['mean']:.3f}" + (f" ± {s[c]['std']:.3f}" if s[c]["n"] > 1 else "") for c in cols)
            + " |"
        )
    lines.append(
        "| blind prior (train-split frequencies, labels) | – | "
        + " | ".join(f"{prior[c]:.3f}" if c in prior else "–" for c in cols)
        + " |"
    )
    lines.append(
        "| chance | – | "
        + " | ".join(f"{chance[c]:.3f}" if c in chance else ("0.500" if c == "correlation_acc" else "–") for c in cols)
        + " |"
    )

    def gain(base, att):
        if base not in summary or att not in summary:
            return None
        b, a = summary[base], summary[att]

        def rel(k, a=a, b=b):
            return 100 * (a[k]["mean"] - b[k]["mean"]) / max(b[k]["mean"], 1e-9)

        return (
            f"correlation accuracy {rel('correlation_acc'):+.1f}%, top-1 file {rel('top1_file'):+.1f}%, "
            f"macro top-1 {rel('top1_file_macro'):+.1f}%, top-5 file {rel('top5_file'):+.1f}%"
        )

    lines.append("")
    for base, att, what in (
        ("baseline", "attention", "the research's setting (correspondence loss)"),
        (
            "baseline+contrastive+bankmix+bankdistill",
            "attention+contrastive+bankmix+bankdistill",
            "our two-stage pipeline",
        ),
        (
            "baseline+contrastive+bankmix+bankdistill+centring",
            "attention+contrastive+bankmix+bankdistill+centring",
            "the shipped recipe (with centring)",
        ),
    ):
        g = gain(base, att)
        if g:
            lines.append(f"- Relative gain of attention over no attention, {what}: {g}.")
    lines.append(
        f"- The paper reports {PAPER['correlation_acc_gain_from_attention']} correlation accuracy and "
        f"{PAPER['recommendation_acc_gain_from_attention']} recommendation accuracy from attention."
    )
    lines.append(f"- Regenerate: `{meta['command']}`")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", default=".cache/gameplay")
    ap.add_argument("--root", default="runs/ablation")
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--corpus", default=None, help="corpus root (default ../shared/data/gameplay): eval and library")
    ap.add_argument("--stage2-steps", type=int, default=STAGE2_STEPS)
    ap.add_argument("--eval-cache", default=".cache/eval")
    ap.add_argument(
        "--center",
        action="store_true",
        help="also evaluate each stage-2 model after hubness centring (edgeav_train.center; λ chosen on val)",
    )
    ap.add_argument("--out", default="research/results/ablation")
    a = ap.parse_args(argv)
    from benchmarks.common import command_line
    from edgeav_train.corpus import corpus_root

    sounds = corpus_root(a.corpus) / "sounds"
    root = Path(a.root)
    if not a.eval_only:
        for stage in (1, 2):  # stage-2 runs need their stage-1 model
            jobs = [
                (train_cmd(v, s, a.steps, root, a.cache, sounds, a.stage2_steps), run_dir(root, v, s))
                for v in a.variants
                for s in a.seeds
                if v.endswith(STAGE2) == (stage == 2) and not (run_dir(root, v, s) / "model.safetensors").exists()
            ]
            train_all(jobs, a.parallel, a.threads)

    import torch

    from edgeav.atomic import write_json
    from edgeav.models import load_model
    from edgeav_train.evaluate import VisualCache, evaluate, load_inputs

    torch.set_num_threads(2)
    inputs, vcache, results, per_run = None, VisualCache(a.eval_cache), {}, {}
    for v in a.variants:
        for s in a.seeds:
            path = run_dir(root, v, s) / "model.safetensors"
            if not path.exists():
                continue
            m = load_model(str(path))
            inputs = inputs or load_inputs(a.corpus, m.cfg.frame_size, m.cfg.frame_offsets, cache_dir=a.eval_cache)
            runs = [(v, m)]
            if a.center and v.endswith(STAGE2):
                from edgeav_train.center import centred

                runs.append((f"{v}+centring", centred(m, a.cache, a.corpus, eval_cache=a.eval_cache, verbose=False)[0]))
            for name, model in runs:
                res = evaluate(model, inputs, a.corpus, vcache=vcache)
                results.setdefault(name, []).append(res)
                per_run[f"{name}-s{s}"] = res
                print(
                    name,
                    s,
                    {k: round(res["model"][k], 3) for k in ("top1_file", "top1_file_macro", "top5_file")},
                    round(res["correlation"]["correlation_acc"], 3),
                    flush=True,
                )
    any_res = next(iter(per_run.values()))
    summary = summarize(results)
    prior = any_res["blind_prior"]
    meta = {
        "steps": a.steps,
        "seeds": a.seeds,
        "n_queries": any_res["n_queries"],
        "n_effects": any_res["n_effects"],
        "bank_size": any_res["bank_size"],
        "stage2_steps": a.stage2_steps,
        "command": command_line("research.ablation", argv),
    }
    write_json(
        a.out + ".json",
        {
            "meta": meta,
            "summary": summary,
            "blind_prior": prior,
            "chance": any_res["chance"],
            "paper": PAPER,
            "runs": per_run,
        },
    )
    Path(a.out + ".md").write_text(markdown(summary, prior, any_res["chance"], meta))
    print(Path(a.out + ".md").read_text())


if __name__ == "__main__":
    main()
