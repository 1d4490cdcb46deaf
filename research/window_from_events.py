"""Could a run's windows be named by the event head instead of the window encoder?

A model with an event head computes, for every frame, an embedding in the bank's space (which sound starts here);
a window asks the window encoder which sound starts 0.2 s into it. At oracle timing — each logged effect of the
val and test clips, its window starting 0.2 s before it — this compares the two on the same events: the window
encoder on the window's frames (the frames on screen 0.2 and 0.4 s after its start, as `edgeav run` stacks them)
and the event head's embedding of the effect's frame, both searched in the same bank. It measures the sound named
at known moments only (no detection), the oracle-timing figures of the README's models table.

Writes results/window_from_events.{json,md}.

    python -m research.window_from_events
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.common import command_line, write_result
from research import RESULTS

WAYS = ("window encoder", "event head")


def split_hits(model: str, bank_path: str, cache25: str, split: str) -> dict:
    """Per timing — "oracle" (a window at each logged effect), "ticks near" (the run's 0.5 s grid, windows whose
    sound would start within ±80 ms of a logged effect) — {way: {true sound: [top-1 right per window]}}; and for the
    grid's other windows, how often the two ways name the same sound."""
    from edgeav.backends import load_backend
    from edgeav.bank import SoundBank
    from edgeav.frontends import WindowSpec
    from edgeav_train.corpus import load_clips
    from edgeav_train.event_eval import clip_scores
    from edgeav_train.events import FrameClips

    backend, bank, spec = load_backend(model, "torch", threads=1), SoundBank.load(bank_path), WindowSpec()
    clips = {str(Path(c.video).resolve()): c for c in load_clips(None, split)}
    cache = FrameClips(cache25, (split,))
    hits: dict = {timing: {way: {} for way in WAYS} for timing in ("oracle", "ticks near")}
    away = agree = 0
    for source, frames in zip(cache.sources, cache.frames):
        embs = clip_scores(backend.trained.events, frames)[1]
        events = json.loads(clips[source].events.read_text())["sound_events"]
        for e in events:
            for way, top in zip(WAYS, tops(backend, bank, frames, embs, cache.fps, e["t"] - spec.pre_roll_s)):
                hits["oracle"][way].setdefault(e["sound_id"], []).append(top == e["sound_id"])
        times = np.array([e["t"] for e in events])
        for start in np.arange(0.0, len(frames) / cache.fps - max(spec.frame_offsets), 0.5):
            named = tops(backend, bank, frames, embs, cache.fps, start)
            gap = np.abs(times - (start + spec.pre_roll_s)) if len(times) else np.array([np.inf])
            if gap.min() <= 0.08:
                true = events[int(np.argmin(gap))]["sound_id"]
                for way, top in zip(WAYS, named):
                    hits["ticks near"][way].setdefault(true, []).append(top == true)
            else:
                away, agree = away + 1, agree + (named[0] == named[1])
    ticks_away = {"windows": away, "agree": agree / max(away, 1)}
    return {**{timing: summary(h) for timing, h in hits.items()}, "ticks away": ticks_away}


def tops(backend, bank, frames: np.ndarray, embs: np.ndarray, fps: float, start: float) -> tuple[str, str]:  # noqa: ANN001
    """The window starting at `start`: its top sound by the window encoder and by the event head."""
    from edgeav.frontends import WindowSpec

    spec = WindowSpec()
    at = [min(int(round((start + o) * fps)), len(frames) - 1) for o in (*spec.frame_offsets, spec.pre_roll_s)]
    window = backend.encode_visual(np.asarray(frames[at[:-1]])[None])[0]
    return tuple(bank.ids[int(np.argmax(bank.embeddings @ v))] for v in (window, embs[at[-1]]))


def summary(hits: dict) -> dict:
    return {
        way: {
            "windows": sum(map(len, h.values())),
            "top1": float(np.mean([x for v in h.values() for x in v])),
            "macro_top1": float(np.mean([np.mean(v) for v in h.values()])),
        }
        for way, h in hits.items()
    }


def markdown(res: dict, cmd: str) -> str:
    lines = [
        f"The sound a window names ({res['model']}, the corpus's bank): the window encoder on the window's frames "
        "(0.2 and 0.4 s after its start, as `edgeav run` stacks them) against the event head's embedding of the "
        "frame 0.2 s into it (where the window's sound would start). Oracle: a window at each logged effect; ticks "
        "near: the run's 0.5 s grid, the windows whose sound would start within ±80 ms of a logged effect.",
        "",
        "| split | timing | windows | window encoder: top-1 / macro top-1 | event head: top-1 / macro top-1 |",
        "|---|---|---|---|---|",
    ]
    for split, r in res["splits"].items():
        for timing in ("oracle", "ticks near"):
            w, h = r[timing]["window encoder"], r[timing]["event head"]
            lines.append(
                f"| {split} | {timing} | {w['windows']} | {w['top1']:.3f} / {w['macro_top1']:.3f} | "
                f"{h['top1']:.3f} / {h['macro_top1']:.3f} |"
            )
    lines.append("")
    lines += [
        f"- {split}: the grid's other {r['ticks away']['windows']} windows (no effect starting within ±80 ms): the "
        f"two name the same sound in {r['ticks away']['agree']:.3f} of them"
        for split, r in res["splits"].items()
    ]
    lines += ["", f"Command: `{cmd}`"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    import torch

    from benchmarks.value import corpus_bank
    from edgeav_train.corpus import corpus_root

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="student")
    ap.add_argument("--cache25", default=".cache/gameplay-25", help="the corpus's frame-rate cache")
    ap.add_argument("--splits", nargs="+", default=["val", "test"])
    ap.add_argument("--bank-cache", default=".cache/value")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    bank = corpus_bank(a.model, corpus_root(None), Path(a.bank_cache))
    res: dict = {"model": a.model, "splits": {}}
    with torch.no_grad():
        for split in a.splits:
            res["splits"][split] = split_hits(a.model, bank, a.cache25, split)
            print(split, res["splits"][split], flush=True)
    write_result("window_from_events", res, markdown(res, command_line("research.window_from_events", argv)), a.out)
    return res


if __name__ == "__main__":
    main()
