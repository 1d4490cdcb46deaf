"""How much does each model's visual embedding move under a small perturbation of its input? Gaussian noise of a
few percent of the input's standard deviation, torch FP32, on real windows: the cosine of the noisy embedding to the
clean one. INT8 adds a perturbation of this kind to every layer, so a model that moves a lot here loses accuracy in
INT8 whatever the quantizer does (the teacher: benchmarks/results/accuracy.md). Windows: 16 from each of the first
`--clips` val clips of the corpus, or 96 from the bundled clip when the corpus is absent. Writes
results/noise_sensitivity.{json,md}.

    python -m research.noise_sensitivity --models teacher student student_mobile student_small
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import command_line, write_result
from research import RESULTS


def windows(cfg, corpus: str | None, clips: int) -> tuple[np.ndarray, str]:
    from edgeav.defaults import DEFAULT_CLIP
    from edgeav.export.quantize import calibration_windows
    from edgeav_train.corpus import corpus_root, load_clips

    if (corpus_root(corpus) / "splits.csv").exists():
        val = load_clips(corpus, "val")[:clips]
        return (
            np.concatenate([calibration_windows(str(c.video), cfg, 16)["frames"] for c in val]),
            f"16 windows of each of {len(val)} val clips",
        )
    return calibration_windows(str(DEFAULT_CLIP), cfg, 96)["frames"], "96 windows of the bundled clip"


def measure(name: str, a) -> dict:
    import torch

    from edgeav.models import load_model

    torch.manual_seed(0)  # the same noise draw for every run
    model = load_model(name).eval()
    x, source = windows(model.cfg, a.corpus, a.clips)
    x = torch.from_numpy(x)
    row = {"model": name, "windows": source, "noise": {}}
    with torch.no_grad():
        clean = model.encode_visual(x)
        for s in a.noise:
            cos = torch.nn.functional.cosine_similarity(
                model.encode_visual(x + s * x.std() * torch.randn_like(x)), clean
            )
            row["noise"][str(s)] = {"mean": float(cos.mean()), "min": float(cos.min())}
    print(row, flush=True)
    return row


def markdown(result: dict) -> str:
    levels = result["noise"]
    lines = [
        f"Visual embedding cosine, noisy input against clean, torch FP32; noise = Gaussian × the input's std; "
        f"{result['rows'][0]['windows']}. Command: `{result['command']}`.",
        "",
        "| model | " + " | ".join(f"noise {s}: mean (min)" for s in levels) + " |",
        "|---|" + "---|" * len(levels),
    ]
    for r in result["rows"]:
        cells = [f"{r['noise'][str(s)]['mean']:.3f} ({r['noise'][str(s)]['min']:.3f})" for s in levels]
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["teacher", "student", "student_mobile", "student_small"])
    ap.add_argument("--noise", type=float, nargs="+", default=[0.01, 0.03, 0.1])
    ap.add_argument("--clips", type=int, default=6, help="val clips, 16 windows each")
    ap.add_argument("--corpus", default=None, help="corpus root (default ../shared/data/gameplay)")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    result = {
        "noise": a.noise,
        "rows": [measure(m, a) for m in a.models],
        "command": command_line("research.noise_sensitivity", argv),
    }
    write_result("noise_sensitivity", result, markdown(result), a.out)


if __name__ == "__main__":
    main()
