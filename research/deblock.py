"""Do the decoding shortcuts of `edgeav run` change what it finds?

The models were trained on fully decoded RGB frames. `edgeav run` decodes a file without H.264's loop filter by
default (a sixth less decoding time; research/results/decode_cost.md), and hands a head that reads them the
decoder's YUV 4:2:0 planes instead of RGB (the scaler's conversion skipped; the head folds it into its first conv,
each chroma sample standing for its 2×2 pixels). Here each val and test clip of the corpus is run both ways of one
shortcut (`--events-only`, the shipped student, the corpus's bank): detection within ±80 ms and the sound at the
found events, scored against the clips' logs, and how many of the first way's events the second finds at the same
frame with the same top sound.

Writes results/deblock.{json,md} (`--shortcut deblock`) or results/yuv420.{json,md} (`--shortcut yuv420`).

    python -m research.deblock
    python -m research.deblock --shortcut yuv420
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.common import command_line, write_result
from research import RESULTS

SHORTCUTS = {  # per shortcut, its two ways as RunConfig options: the one without it first
    "deblock": {
        "deblocked (--deblock, as trained)": {"deblock": True},
        "deblocking skipped (the default)": {"deblock": False},
    },
    "yuv420": {
        "RGB frames (--rgb, as trained)": {"rgb": True},
        "YUV 4:2:0 planes (the default)": {"rgb": False},
    },
}


def agreement(pairs: list[tuple[list, list]]) -> dict:
    """Of the first way's events (per clip: its lines, the other way's), the share the other way has at the same
    frame (±1), and with the same top sound."""
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


def measure(model: str, bank: str, clips: list, ways: dict) -> dict:
    from benchmarks.adapt_events import event_lines, scored_lines, sound_at_found, top_at_found

    lines = {name: [event_lines(model, bank, c, 5, **options) for c in clips] for name, options in ways.items()}
    ways = {}
    for name, got in lines.items():
        det, found = scored_lines(clips, got)
        named = sound_at_found(top_at_found(found, None), det["true_events"], "")  # "": no prior to score beside
        ways[name] = {**det, **{k: named[k] for k in ("top1_at_found", "macro_top1_at_found")}}
    return {"ways": ways, "agreement": agreement(list(zip(*lines.values())))}


def markdown(res: dict, cmd: str) -> str:
    lines = [
        f"`edgeav run --events-only` ({res['model']}, the corpus's bank) on the corpus's clips decoded two ways "
        f"({res['shortcut']}); found = within ±80 ms of a logged effect.",
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
    first, second = SHORTCUTS[res["shortcut"]]
    lines += ["", f"Of the events with {first}, the run with {second} has:", ""]
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
    ap.add_argument("--shortcut", choices=sorted(SHORTCUTS), default="deblock")
    ap.add_argument("--splits", nargs="+", default=["val", "test"])
    ap.add_argument("--bank-cache", default=".cache/value")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    root = corpus_root(None)
    bank = corpus_bank(a.model, root, Path(a.bank_cache))
    res: dict = {"model": a.model, "shortcut": a.shortcut, "splits": {}}
    for split in a.splits:
        clips = load_clips(root, split)
        res["splits"][split] = {"clips": len(clips), **measure(a.model, bank, clips, SHORTCUTS[a.shortcut])}
        print(split, res["splits"][split], flush=True)
    write_result(a.shortcut, res, markdown(res, command_line("research.deblock", argv)), a.out)
    return res


if __name__ == "__main__":
    main()
