"""The gameplay corpus (its root given as --corpus or EDGEAV_CORPUS): splits, the sound bank with categories, and
evaluation queries.

Sound events are ground truth for evaluation only: nothing here feeds training.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

CORPUS_ENV = "EDGEAV_CORPUS"  # the corpus root when no --corpus is given


@dataclass(frozen=True)
class Clip:
    clip_id: str
    game: str
    split: str
    video: Path
    events: Path


@dataclass(frozen=True)
class Query:
    """One sound event of a test clip: the visual window at `t` should recommend `sound_id`."""

    clip_id: str
    game: str
    t: float
    sound_id: str
    category: str


def corpus_root(root: str | Path | None = None) -> Path:
    """The corpus root: `root`, else $EDGEAV_CORPUS; a clear error when neither names a corpus."""
    from edgeav.errors import EdgeavError

    root = root or os.environ.get(CORPUS_ENV)
    if not root:
        raise EdgeavError(
            "no evaluation corpus given",
            f"pass --corpus PATH or set {CORPUS_ENV}=PATH (a folder with clips/, events/, sounds/, splits.csv)",
        )
    return Path(root)


def load_clips(root=None, split: str | None = None) -> list[Clip]:
    r = corpus_root(root)
    out = []
    with open(r / "splits.csv") as f:
        for row in csv.DictReader(f):
            if split and row["split"] != split:
                continue
            cid, game = row["clip_id"], row["game"]
            out.append(
                Clip(cid, game, row["split"], r / "clips" / game / f"{cid}.mp4", r / "events" / game / f"{cid}.json")
            )
    return out


def load_sounds(root=None) -> list[dict]:
    """Rows of sounds.csv: sound_id, game, file (relative to root), duration_s, category."""
    with open(corpus_root(root) / "sounds.csv") as f:
        return list(csv.DictReader(f))


def load_queries(root=None, split: str = "test", games: set[str] | None = None) -> list[Query]:
    cats = {s["sound_id"]: s["category"] for s in load_sounds(root)}
    out = []
    for clip in load_clips(root, split):
        if games and clip.game not in games:
            continue
        ev = json.loads(clip.events.read_text())
        for e in ev["sound_events"]:
            out.append(Query(clip.clip_id, clip.game, float(e["t"]), e["sound_id"], cats.get(e["sound_id"], "unknown")))
    return out


def event_counts(root=None, split: str = "train") -> dict[str, dict[str, int]]:
    """game → sound_id → how often it fires in `split` (the blind prior's ranking)."""
    counts: dict[str, dict[str, int]] = {}
    for q in load_queries(root, split):
        g = counts.setdefault(q.game, {})
        g[q.sound_id] = g.get(q.sound_id, 0) + 1
    return counts
