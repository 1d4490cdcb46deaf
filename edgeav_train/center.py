"""Hubness reduction for a trained model, label-free: centre its visual embeddings on the mean embedding of training
footage.

A few library sounds (long ambiences, intros) sit close to almost every gameplay frame in the shared space, so they
top the list whatever is on screen. Subtracting λ × the mean visual embedding of unlabeled training windows before
re-normalizing removes that shared direction (the usual fix for hubs in nearest-neighbour search). The mean needs no
labels; λ is one scalar chosen on the val split's events (as the correlation threshold is) and the test split is not
read. The result is an ordinary model file: `AVConfig.center_weight` = λ and the buffer `visual_center` = the mean,
applied inside `encode_visual`, so ONNX/TensorRT exports and every runtime get it for free.

    python -m edgeav_train.center MODEL.safetensors -o OUT [--cache .cache/gameplay] [--weights 0 0.25 0.5 0.75 1]
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch

from edgeav.atomic import save_npy
from edgeav.errors import EdgeavError
from edgeav.io import VideoFile
from edgeav.models import load_model, save_model
from edgeav_train.corpus import corpus_root, load_clips, load_queries
from edgeav_train.data import WindowSampler, encode_window_visuals
from edgeav_train.evaluate import VisualCache, _stack_at, bank_metrics, search_bank

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def uncentred(model):
    """A copy of `model` without its centring (center_weight 0, no visual_center buffer), in eval mode."""
    cfg = copy.deepcopy(model.cfg)
    cfg.center_weight = 0.0
    plain = type(model)(cfg, model.card)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if k != "visual_center"})
    return plain.eval()


@torch.no_grad()
def footage_center(model, cache: str | Path, n: int = 4096, seed: int = 0, splits=("train",), games=()) -> np.ndarray:
    """Mean visual embedding of an uncentred `model` over n random windows of the cached footage."""
    sampler = WindowSampler.for_model(cache, model, splits, games)
    rows = sampler.all_rows()
    if not len(rows):
        raise EdgeavError(
            f"no {'/'.join(splits)} footage windows in the cache {cache}",
            "build it from your footage first: edgeav cache FOOTAGE_DIR -o CACHE",
        )
    rows = rows[np.random.default_rng(seed).choice(len(rows), min(n, len(rows)), replace=False)]
    z = [encode_window_visuals(model, sampler.visuals(rows[i : i + 256])) for i in range(0, len(rows), 256)]
    return torch.cat(z).mean(0).numpy()


def val_query_frames(model, root=None, pre_roll: float = 0.2, cache_dir: str | Path = ".cache/eval"):
    """(val queries, their frame stacks): the visual window at each val sound event, decoded once and cached at
    128×96 (smaller students get them resized, as in edgeav_train.evaluate)."""
    size, offsets = (128, 96), model.cfg.frame_offsets
    clips = load_clips(root, "val")
    if not clips:
        raise EdgeavError(f"no val clips in the corpus {corpus_root(root)}", "λ is chosen on the val split's events")
    by_clip = {}
    for q in load_queries(root, "val"):
        by_clip.setdefault(q.clip_id, []).append(q)
    queries = [q for c in clips for q in by_clip.get(c.clip_id, [])]  # clip order: the order stacks are decoded in
    path = Path(cache_dir) / f"valqueries-{size[0]}x{size[1]}-{'_'.join(map(str, offsets))}-{pre_roll}.npy"
    if path.exists():
        return queries, np.load(path)
    stacks = []
    for clip in clips:
        mine = by_clip.get(clip.clip_id, [])
        if not mine:
            continue
        v = VideoFile(clip.video, fps=None, size=size)
        f25 = np.stack([img for _, img in v.frames()])
        v.close()
        stacks += [_stack_at(f25, [q.t - pre_roll + o for o in offsets]) for q in mine]
    save_npy(path, np.stack(stacks))
    return queries, np.stack(stacks)


def choose_weight(v: np.ndarray, mu: np.ndarray, bank, queries, weights=WEIGHTS) -> tuple[float, dict]:
    """λ maximizing top-1 + macro top-1 file accuracy on the val events; the table of every λ tried."""
    table = {}
    for w in weights:
        c = v - w * mu
        c /= np.linalg.norm(c, axis=1, keepdims=True)
        r = bank_metrics(bank, c, queries)
        table[w] = {k: round(r[k], 4) for k in ("top1_file", "top1_file_macro", "top5_file")}
    best = max(weights, key=lambda w: table[w]["top1_file"] + table[w]["top1_file_macro"])
    return float(best), table


def centred(
    model,
    cache: str = ".cache/gameplay",
    root=None,
    weights=WEIGHTS,
    n: int = 4096,
    seed: int = 0,
    eval_cache: str | Path = ".cache/eval",
    verbose: bool = True,
):
    """(a centred copy of `model`, the chosen λ, the val table of every λ tried). `model` is left as it was."""
    plain = uncentred(model)  # measure and choose on the uncentred embeddings
    mu = footage_center(plain, cache, n, seed)
    bank = search_bank(plain, root, eval_cache)
    queries, stacks = val_query_frames(plain, root, cache_dir=eval_cache)
    v = VisualCache(eval_cache).embed(plain, stacks, "valqueries")
    best, table = choose_weight(v, mu, bank, queries, weights)
    if verbose:
        for w, r in table.items():
            print(
                f"center weight {w:<5} val top-1 {r['top1_file']:.3f}  macro {r['top1_file_macro']:.3f}  "
                f"top-5 {r['top5_file']:.3f}",
                flush=True,
            )
        print(f"chosen: {best} (val events: {len(queries)}; footage windows averaged: {n})", flush=True)
    cfg = copy.deepcopy(plain.cfg)
    cfg.center_weight = best
    out = type(model)(cfg, model.card)
    sd = plain.state_dict()
    if best:
        sd["visual_center"] = torch.from_numpy(mu)
    out.load_state_dict(sd)
    return out.eval(), best, table


def center(
    model_path: str,
    out: str,
    cache: str = ".cache/gameplay",
    root=None,
    weights=WEIGHTS,
    n: int = 4096,
    seed: int = 0,
    eval_cache: str | Path = ".cache/eval",
) -> Path:
    model, best, table = centred(load_model(model_path), cache, root, weights, n, seed, eval_cache)
    center = {
        "weight": best,
        "val": {str(k): r for k, r in table.items()},
        "windows": n,
        "seed": seed,
        "cache": str(cache),
        "source": str(model_path),
    }
    return save_model(model, out, model.card.replace(provenance={**model.card.provenance, "center": center}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--cache", default=".cache/gameplay")
    ap.add_argument("--weights", type=float, nargs="+", default=list(WEIGHTS))
    ap.add_argument("--windows", type=int, default=4096)
    a = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(center(a.model, a.out, a.cache, weights=tuple(a.weights), n=a.windows))
