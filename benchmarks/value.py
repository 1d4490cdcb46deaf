"""The value report of a model as a user gets it: the corpus's sound library indexed with `edgeav index`, each
test clip through `edgeav run` (the product's own placements, no event log), its cue sheet scored with
`edgeav score` against the clip's real event log (matched within ±80 ms). Overall and per game.
Writes results/value.{json,md} and value-report.{json,html}.

    python -m benchmarks.value --model student
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

from benchmarks.common import RESULTS, command_line, write_result

GAP_S = 1.0  # between clips laid end to end as one timeline: wider than any tolerance, so no match crosses clips


def corpus_bank(model: str, root: Path, cache: Path) -> str:
    """The corpus's 207 sound files indexed for `model`, with their categories (incremental: reused)."""
    from edgeav.atomic import atomic_path
    from edgeav.backends import load_backend
    from edgeav.bank import bank_encoder, index_sounds

    cats = cache / "categories.csv"
    # atomic: benchmarks run side by side share the cache, and one must never read another's half-written file
    with open(root / "sounds.csv", newline="") as f, atomic_path(cats) as tmp, open(tmp, "w", newline="") as out:
        w = csv.writer(out)
        for row in csv.DictReader(f):
            w.writerow([row["sound_id"], row["category"]])
    be = bank_encoder(load_backend(model), warn=print)
    out = cache / f"corpus-{be.model_id}.npz"
    index_sounds(be, [root / "sounds"], out, cats, progress=False, model_id=be.model_id)
    return str(out)


def main(argv: list[str] | None = None) -> dict:
    from edgeav.cues import Cue, read_cues
    from edgeav.pipeline import RunConfig, run
    from edgeav.score import score, write_report
    from edgeav_train.corpus import corpus_root, load_clips, load_sounds

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="student")
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--split", default="test")
    ap.add_argument("--tolerance-ms", type=float, default=80.0)
    ap.add_argument("--cache", default=".cache/value")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    root = corpus_root(a.corpus)
    cats = {s["sound_id"]: s["category"] for s in load_sounds(root)}
    bank = corpus_bank(a.model, root, Path(a.cache))
    clips = load_clips(root, a.split)
    every_pred, every_true, per_game, minutes, offset = [], [], {}, 0.0, 0.0
    for clip in clips:
        with tempfile.TemporaryDirectory() as d:
            res = run(
                RunConfig(source=str(clip.video), bank=bank, model=a.model, quiet=True, cues=str(Path(d) / "cues.csv"))
            )
            pred = read_cues(Path(d) / "cues.csv")  # the cue sheet, as `edgeav score` reads it
        true = read_cues(clip.events, cats)
        length = max(res.windows * 0.5, max((c.t for c in true), default=0.0))
        minutes += length / 60
        game = per_game.setdefault(clip.game, {"pred": [], "true": [], "minutes": 0.0})
        game["minutes"] += length / 60
        for src, dst in ((pred, (every_pred, game["pred"])), (true, (every_true, game["true"]))):
            shifted = [Cue(c.t + offset, c.sound, c.file, c.category, c.score, c.duration, c.alternatives) for c in src]
            for lst in dst:
                lst.extend(shifted)
        offset += length + GAP_S
        print(f"{clip.clip_id}: {len(pred)} placed, {len(true)} events", flush=True)
    overall = score(every_pred, every_true, a.tolerance_ms, minutes)
    games = {g: score(v["pred"], v["true"], a.tolerance_ms, v["minutes"]) for g, v in sorted(per_game.items())}
    keep = (
        "predicted",
        "true_events",
        "matched",
        "precision",
        "recall",
        "f1",
        "top1_at_matched",
        "top5_at_matched",
        "category_at_matched",
        "found_and_right",
        "false_alarms_per_minute",
    )
    result = {
        "model": a.model,
        "split": a.split,
        "clips": len(clips),
        "minutes": round(minutes, 2),
        "tolerance_ms": a.tolerance_ms,
        "overall": {k: overall[k] for k in keep},
        "per_game": {g: {k: r[k] for k in keep} for g, r in games.items()},
        "command": command_line("value", argv),
    }
    out = Path(a.out)
    write_result("value", result, markdown(result), out)
    write_report(
        overall, every_pred, every_true, out / "value-report", f"edgeav value report: {a.model}, {a.split} split"
    )
    print(markdown(result))
    return result


def markdown(result: dict) -> str:
    cols = [
        ("predicted", "placed"),
        ("true_events", "events"),
        ("matched", "matched"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("f1", "F1"),
        ("top1_at_matched", "right sound"),
        ("top5_at_matched", "in top 5"),
        ("category_at_matched", "right category"),
        ("false_alarms_per_minute", "false alarms / min"),
    ]
    head = (
        f"`edgeav run` (model `{result['model']}`, the product's own placements) on the corpus's {result['split']} "
        f"split ({result['clips']} clips, {result['minutes']:.0f} min), each cue sheet scored by `edgeav score` "
        f"against the clip's event log, matched within ±{result['tolerance_ms']:.0f} ms. Right sound / top 5 / "
        f"category: at matched events. Command: `{result['command']}`."
    )
    lines = [head, "", "| | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    rows = [("all games", result["overall"]), *result["per_game"].items()]
    for name, r in rows:
        vals = [f"{r[k]:.2f}" if isinstance(r[k], float) else str(r[k]) for k, _ in cols]
        lines.append(f"| {name} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
