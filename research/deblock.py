"""Does skipping the codec's deblocking filter change what `edgeav run` finds?

`edgeav run` decodes a file without H.264's loop filter by default (a sixth less decoding time; research/results/
decode_cost.md); the models were trained on fully decoded frames. Here each val and test clip of the corpus is run
both ways (`--events-only`, the shipped student, the corpus's bank): detection within ±80 ms and the sound at the
found events, scored against the clips' logs, and how many of one run's events the other finds at the same frame
with the same top sound.

Writes results/deblock.{json,md}.

    python -m research.deblock
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.common import command_line, write_result
from research import RESULTS

WAYS = {"deblocked (--deblock, as trained)": True, "deblocking skipped (the default)": False}


def agreement(pairs: list[tuple[list, list]]) -> dict:
    """Of the deblocked run's events (per clip: its lines, the other run's), the share the other run has at the
    same frame (±1), and with the same top sound."""
    from edgeav.score import match_times

    same_frame = same_sound = total = 0
    for exact, skipped in pairs:
        matched = match_times([r["t"] for r in skipped], [r["t"] for r in exact], 0.041)
        same_frame += len(matched)
        same_sound += sum(
            skipped[i]["recommendations"][0]["sound"] == exact[j]["recommendations"][0]["sound"] for i, j in matched
        )
        total += len(exact)
    return {
        "events": total,
        "same_frame": same_frame / max(total, 1),
        "same_frame_and_sound": same_sound / max(total, 1),
    }


def measure(model: str, bank: str, clips: list) -> dict:
    from benchmarks.adapt_events import event_lines, scored_lines, sound_at_found

    lines = {name: [event_lines(model, bank, c, 5, deblock=d) for c in clips] for name, d in WAYS.items()}
    ways = {}
    for name, got in lines.items():
        det, found = scored_lines(clips, got)
        named = sound_at_found(found, det["true_events"], "", None)  # "": no prior to score beside
        ways[name] = {**det, **{k: named[k] for k in ("top1_at_found", "macro_top1_at_found")}}
    return {"ways": ways, "agreement": agreement(list(zip(*lines.values())))}


def markdown(res: dict, cmd: str) -> str:
    lines = [
        f"`edgeav run --events-only` ({res['model']}, the corpus's bank) on the corpus's clips with and without the "
        "codec's deblocking filter; found = within ±80 ms of a logged effect.",
        "",
        "| split | decoding | P / R / F1 | top-1 / macro top-1 at found events |",
        "|---|---|---|---|",
    ]
    for split, r in res["splits"].items():
        for name, w in r["ways"].items():
            lines.append(
                f"| {split} ({r['clips']} clips, {w['true_events']} events) | {name} | {w['precision']:.3f} / "
                f"{w['recall']:.3f} / {w['f1']:.3f} | {w['top1_at_found']:.3f} / {w['macro_top1_at_found']:.3f} |"
            )
    lines += ["", "Of the deblocked run's events, the run without deblocking has:", ""]
    for split, r in res["splits"].items():
        g = r["agreement"]
        lines.append(
            f"- {split}: {g['same_frame']:.3f} at the same frame (±1), {g['same_frame_and_sound']:.3f} there with the "
            f"same top sound ({g['events']} events)"
        )
    lines += ["", f"Command: `{cmd}`"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    from benchmarks.value import corpus_bank
    from edgeav_train.corpus import corpus_root, load_clips

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="student")
    ap.add_argument("--splits", nargs="+", default=["val", "test"])
    ap.add_argument("--bank-cache", default=".cache/value")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    root = corpus_root(None)
    bank = corpus_bank(a.model, root, Path(a.bank_cache))
    res: dict = {"model": a.model, "splits": {}}
    for split in a.splits:
        clips = load_clips(root, split)
        res["splits"][split] = {"clips": len(clips), **measure(a.model, bank, clips)}
        print(split, res["splits"][split], flush=True)
    write_result("deblock", res, markdown(res, command_line("research.deblock", argv)), a.out)
    return res


if __name__ == "__main__":
    main()
