"""Are the fingerprinted starts frame-precise onset targets, and does the picture mark the start frame? A diagnostic
against the train split's event logs (read here only, never to train): the fingerprint detections stage 2 and the
event head train on, matched to the logged starts within ±40 ms (one frame at 25 fps); and the raw picture change at
frames around each fingerprinted start (fraction of pixels moved since the frame before) against random frames,
as ROC AUC, in the frame-rate cache.

    python -m research.onset_targets --fingerprints .cache/gameplay/fingerprints-9566773310b4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.common import command_line, write_result
from research import RESULTS


def target_quality(folder: Path, corpus: str | None) -> dict:
    from edgeav.score import match_times
    from edgeav_train.corpus import load_clips

    found = logged = tp = right = 0
    offsets = []
    for clip in load_clips(corpus, "train"):
        p = folder / f"{clip.clip_id}.json"
        if not p.exists():
            continue
        d = json.loads(p.read_text())
        det = [(t, d["ids"][j]) for t, j, _ in d["detections"]]
        ev = json.loads(clip.events.read_text())["sound_events"]
        pairs = match_times([t for t, _ in det], [e["t"] for e in ev], 0.04)
        found, logged, tp = found + len(det), logged + len(ev), tp + len(pairs)
        right += sum(det[i][1] == ev[j]["sound_id"] for i, j in pairs)
        offsets += [det[i][0] - ev[j]["t"] for i, j in pairs]
    return {
        "detections": found,
        "logged": logged,
        "precision": round(tp / found, 4),
        "recall": round(tp / logged, 4),
        "file_right_at_matched": round(right / tp, 4),
        "median_offset_ms": round(1e3 * float(np.median(offsets)), 1),
    }


def change_auc(cache: str, folder: Path, shifts=(-2, -1, 0, 1, 2), every: int = 7, level: int = 30) -> dict:
    from sklearn.metrics import roc_auc_score

    from edgeav_train.events import FrameClips
    from edgeav_train.fingerprint import load_detections

    clips = FrameClips(cache)
    ids, _ = load_detections(folder, clips.keys)
    starts = clips.starts(folder, ids)
    scores: dict[int, tuple[list, list]] = {s: ([], []) for s in shifts}
    for c in range(0, len(clips.keys), every):
        fr, rng = clips.frames[c], np.random.default_rng(c)

        def change(i: int, fr=fr) -> float:
            i = int(np.clip(i, 1, len(fr) - 1))
            return float((np.abs(fr[i].astype(np.int16) - fr[i - 1].astype(np.int16)).max(-1) > level).mean())

        negatives = [change(f) for f in rng.integers(1, len(fr), 200)]
        for s in shifts:
            scores[s][0].extend(change(f + s) for f in starts[c])
            scores[s][1].extend(negatives)
    return {str(s): round(float(roc_auc_score([1] * len(p) + [0] * len(n), p + n)), 3) for s, (p, n) in scores.items()}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fingerprints", required=True)
    ap.add_argument("--cache", default=".cache/gameplay-25")
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    folder = Path(a.fingerprints)
    res = {"targets": target_quality(folder, a.corpus), "change_auc_by_frame_shift": change_auc(a.cache, folder)}
    q, auc = res["targets"], res["change_auc_by_frame_shift"]
    md = (
        "Fingerprinted starts against the train split's event logs (diagnostic; matched within ±40 ms), and the "
        "picture change at frames around each start against random frames (ROC AUC; every 7th train clip).\n\n"
        "| detections | logged | precision | recall | file right at matched | median offset (ms) |\n"
        "|---|---|---|---|---|---|\n"
        f"| {q['detections']} | {q['logged']} | {q['precision']:.2f} | {q['recall']:.2f} | "
        f"{q['file_right_at_matched']:.2f} | {q['median_offset_ms']:.0f} |\n\n"
        "| frame (relative to the start) | " + " | ".join(auc) + " |\n|---|" + "---|" * len(auc) + "\n"
        "| change AUC | " + " | ".join(f"{v:.3f}" for v in auc.values()) + " |\n\n"
        f"Command: `{command_line('research.onset_targets', argv)}`\n"
    )
    write_result("onset_targets", res, md, a.out)
    return res


if __name__ == "__main__":
    main()
