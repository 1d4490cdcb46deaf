"""The event head over whole clips of the frame-rate cache: per-frame onset scores and embeddings, onsets picked by
the runtime's rule (edgeav.events.pick_onsets), matched to the clip's event log within ±80 ms (edgeav.score.match).
Event logs are read here only, to calibrate the onset threshold on val and to report; never to train."""

from __future__ import annotations

import numpy as np
import torch

from edgeav.models.events import pooled_tensor


@torch.no_grad()
def clip_scores(head, frames: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """(onset logit per frame, NaN where the head lacks context; embedding per frame) of one clip, exactly as the
    streaming detector scores it (frame 0's change is taken against itself)."""
    head.eval()
    n = len(frames)
    codes = []
    for i0 in range(0, n, batch):
        run = np.array(frames[max(i0 - 1, 0) : i0 + batch])  # a run of frames, each pooled once; its first the
        if i0 == 0:  # previous one of the run's second (at the clip's start, frame 0 itself)
            run = np.concatenate([run[:1], run])
        codes.append(head.encode_pooled(pooled_tensor(run[None], head.pool_size))[0][0])
    codes = torch.cat(codes)
    spec = head.spec
    logits = np.full(n, np.nan, np.float32)
    embs = np.zeros((n, head.embed.out_features), np.float32)
    if n < spec.length:
        return logits, embs
    windows = codes.unfold(0, spec.length, 1).permute(0, 2, 1)  # (n − length + 1, length, D)
    for i0 in range(0, len(windows), batch):
        lg, e = head.from_codes(windows[i0 : i0 + batch])
        logits[spec.before + i0 : spec.before + i0 + len(lg)] = lg.numpy()
        embs[spec.before + i0 : spec.before + i0 + len(lg)] = e.numpy()
    return logits, embs


def prf(tp: int, n_pred: int, n_true: int) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_true if n_true else 0.0
    return {
        "predicted": n_pred,
        "true_events": n_true,
        "matched": tp,
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
    }


def calibrate_threshold(
    scores: list[np.ndarray], truths: list[np.ndarray], fps: float, gap: int, grid: np.ndarray | None = None
) -> tuple[float, dict]:
    """The onset logit threshold with the best F1 over the clips (val), and that F1's counts."""
    from edgeav.events import pick_onsets
    from edgeav.score import match_times

    grid = np.linspace(-4, 6, 41) if grid is None else grid
    best = (-1.0, 0.0, {})
    for th in grid:
        tp = n_pred = n_true = 0
        for s, truth in zip(scores, truths):
            on = pick_onsets(s, float(th), gap) / fps
            tp += len(match_times(list(on), list(truth), 0.08))
            n_pred, n_true = n_pred + len(on), n_true + len(truth)
        r = prf(tp, n_pred, n_true)
        if r["f1"] > best[0]:
            best = (r["f1"], float(th), r)
    return best[1], best[2]


def rate_threshold(scores: list[np.ndarray], count: int, gap: int, grid: np.ndarray | None = None) -> tuple[float, int]:
    """The lowest onset threshold at which the clips' detections do not outnumber `count` (the starts found in
    their soundtrack), and how many it detects: a threshold set from unlabeled footage. A head fine-tuned on new
    footage shifts its logits, so a threshold calibrated elsewhere can fire several times per real start."""
    from edgeav.events import pick_onsets

    grid = np.linspace(-4, 6, 81) if grid is None else grid
    for th in grid:
        n = sum(len(pick_onsets(s, float(th), gap)) for s in scores)
        if n <= count:
            return float(th), n
    return float(grid[-1]), n


def change_scores(frames: np.ndarray, lag: int = 5, level: int = 30, batch: int = 300) -> np.ndarray:
    """Per frame, the fraction of pixels whose largest channel moved more than `level` since `lag` frames before
    (edgeav.foley.frame_change over the window's 200 ms at 25 fps): the picture-change baseline's score."""
    n = len(frames)
    out = np.zeros(n, np.float32)
    for i0 in range(0, n, batch):
        idx = np.arange(i0, min(n, i0 + batch))
        a = frames[idx].astype(np.int16)
        b = frames[np.maximum(idx - lag, 0)].astype(np.int16)
        out[idx] = (np.abs(a - b).max(-1) > level).mean((1, 2))
    return out


def top_peaks(scores: np.ndarray, count: int, gap: int) -> np.ndarray:
    """The `count` highest local maxima (±gap frames) of `scores`, in time order: a baseline at a given rate."""
    from edgeav.events import pick_onsets

    peaks = pick_onsets(scores, -np.inf, gap)
    return np.sort(peaks[np.argsort(-scores[peaks], kind="stable")[:count]])


def calibrate_onsets(  # noqa: ANN001
    model, cache: str, corpus: str | None = None, leave_out: tuple[str, ...] = ()
) -> tuple[float, dict]:
    """The onset threshold with the best detection F1 on the corpus's val clips (their event logs; model selection
    only; clips named with a `leave_out` prefix not used), and that F1's counts."""
    import json

    from edgeav.pipeline import ONSET_GAP
    from edgeav_train.corpus import load_clips
    from edgeav_train.events import FrameClips

    frames = FrameClips(cache, ("val",), leave_out)
    by_key = dict(zip(frames.keys, frames.frames))
    scores, truths = [], []
    for clip in load_clips(corpus, "val"):
        if clip.clip_id in by_key:
            scores.append(clip_scores(model.events, by_key[clip.clip_id])[0])
            truths.append(np.array([e["t"] for e in json.loads(clip.events.read_text())["sound_events"]]))
    return calibrate_threshold(scores, truths, frames.fps, ONSET_GAP)
