"""In which space should a verdict be kept? `edgeav run` ranks an event, and with an event head every window, by the
head's embedding of one frame; a verdict embedded by the window encoder sits elsewhere. Per game, on its val clips
at logged events (oracle timing), with the shipped student: the cosine of the head's embedding at the event to the
window encoder's of the window a pre-roll before it (the same moment in the two spaces), and of two events' head
embeddings and two windows' encoder embeddings (different moments in one space). The re-ranking kernel
exp((cos − 1) / 0.1) turns these into the weight a verdict has at that moment.

    python -m research.verdict_space
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.common import command_line, write_result
from research import RESULTS


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def game_cosines(backend, head, clips: list, by_source: dict, fps: float, per_clip: int) -> dict:  # noqa: ANN001
    """Median cosines over one game's clips: the same moment across spaces, other moments within each."""
    from edgeav.feedback import window_embeddings
    from edgeav.frontends import WindowSpec
    from edgeav_train.event_eval import clip_scores

    same, heads, windows = [], [], []
    for clip in clips:
        src = str(Path(clip.video).resolve())
        events = json.loads(clip.events.read_text())["sound_events"][:per_clip]
        if len(events) < 2:
            continue
        embs = clip_scores(head, by_source[src])[1]
        # the head scores no frame without its context (a clip's first and last few): those events are left out
        scored = [(x, f) for x in events if np.any(embs[f := min(int(round(x["t"] * fps)), len(embs) - 1)])]
        if len(scored) < 2:
            continue
        events = [x for x, _ in scored]
        e = _unit(np.stack([embs[f] for _, f in scored]))
        w = _unit(window_embeddings(backend, src, [max(0.0, x["t"] - WindowSpec().pre_roll_s) for x in events]))
        off = ~np.eye(len(events), dtype=bool)
        same += list((e * w).sum(1))
        heads += list((e @ e.T)[off])
        windows += list((w @ w.T)[off])
    med = {k: float(np.median(v)) for k, v in (("same_moment", same), ("head_other", heads), ("window_other", windows))}
    return {**{k: round(v, 3) for k, v in med.items()}, "events": len(same)}


def main(argv: list[str] | None = None) -> dict:
    from edgeav.backends import load_backend
    from edgeav.models import load_model
    from edgeav_train.corpus import corpus_root, load_clips
    from edgeav_train.events import FrameClips

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="student")
    ap.add_argument("--cache25", default=".cache/gameplay-25", help="the corpus's frame-rate cache")
    ap.add_argument("--events-per-clip", type=int, default=30)
    ap.add_argument("--games", nargs="*", default=None, help="only these games (default: every game)")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    root = corpus_root(None)
    head, backend = load_model(a.model).events, load_backend(a.model)
    frames = FrameClips(a.cache25, ("val",))
    by_source = dict(zip(frames.sources, frames.frames))
    val = load_clips(root, "val")
    games = {
        g: game_cosines(backend, head, [c for c in val if c.game == g], by_source, frames.fps, a.events_per_clip)
        for g in sorted({c.game for c in val})
        if not a.games or g in a.games
    }
    lines = [
        "| game | events | same moment: head · window encoder | other events: head · head | other windows: "
        "encoder · encoder |",
        "|---|---|---|---|---|",
        *(
            f"| {g} | {r['events']} | {r['same_moment']:.3f} ({np.exp((r['same_moment'] - 1) / 0.1):.2f}) | "
            f"{r['head_other']:.3f} ({np.exp((r['head_other'] - 1) / 0.1):.2f}) | {r['window_other']:.3f} |"
            for g, r in games.items()
        ),
        "",
        "Median cosines at logged events of each game's val clips (oracle timing), shipped student; in brackets the "
        "re-ranking kernel's weight exp((cos − 1) / 0.1) at that cosine.",
        "",
        f"Reproduce: `{command_line('research.verdict_space', argv)}`",
    ]
    res = {"model": a.model, "events_per_clip": a.events_per_clip, "games": games}
    write_result("verdict_space", res, "\n".join(lines) + "\n", a.out)
    return res


if __name__ == "__main__":
    main()
