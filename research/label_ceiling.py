"""How far is label-free stage 2 from what its architecture can reach? A diagnostic, never a product path: the same
visual part that stage 2 trains (the attention head over the frozen trunk, or a student's whole visual encoder), the
same bank, temperature and schedule — but taught by the TRUE train-split event logs (cross-entropy to the effect
that fired) instead of the soundtrack's match in the library. The gap between the two is what better audio targets
could still win; this row's own level is what the visual architecture allows. Val and test events are measured;
the test split is not used to choose anything.

    python -m research.label_ceiling --model runs/ablation/attention_contrastive_bankmix-s0/model.safetensors \
        --train head --name teacher-head
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.common import command_line, write_result
from research import RESULTS

METRICS = ("top1_file", "top1_file_macro", "top5_file", "top5_file_macro")


def event_rows(sampler, bank_ids: list[str], root=None, pre_roll: float = 0.2):
    """(rows (N, 2) of (clip, window start), target bank index (N,)): the window whose first frame shows each train
    event, as test queries are cut."""
    from edgeav_train.corpus import load_queries

    clip_of = {k: i for i, k in enumerate(sampler.keys)}
    col = {s: i for i, s in enumerate(bank_ids)}
    rows, y = [], []
    for q in load_queries(root, "train"):
        c = clip_of.get(q.clip_id)
        k = int(round((q.t - pre_roll) * sampler.fps))
        if c is not None and q.sound_id in col and 0 <= k < sampler.n_starts[c]:
            rows.append((c, k))
            y.append(col[q.sound_id])
    return np.array(rows), np.array(y)


def train_on_labels(model, what: str, steps: int, batch: int, lr: float, tau: float, seed: int, cache: str, root=None):
    """The model with its visual head (or whole visual encoder) trained on the true events; the bank it points into."""
    import torch
    import torch.nn.functional as F

    from edgeav_train.data import WindowSampler, encode_window_visuals
    from edgeav_train.evaluate import search_bank
    from edgeav_train.loop import warmup_cosine

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    bank = search_bank(model, root)
    sampler = WindowSampler.for_model(cache, model)
    rows, y = event_rows(sampler, bank.ids, root)
    model.requires_grad_(False)
    part = model.visual.head if what == "head" else model.visual
    part.requires_grad_(True)
    opt = torch.optim.AdamW(part.parameters(), lr=lr, weight_decay=1e-4)
    B, Y = torch.from_numpy(bank.embeddings), torch.from_numpy(y)
    schedule = warmup_cosine(lr, 1, steps)  # cosine decay to 0, no warm-up (as stage 2)
    part.train()
    for step in range(1, steps + 1):
        pick = rng.choice(len(rows), min(batch, len(rows)), replace=False)
        for g in opt.param_groups:
            g["lr"] = schedule(step)
        v = encode_window_visuals(model, [sampler.window(c, k)[0] for c, k in rows[pick]])
        loss = F.cross_entropy(v @ B.t() / tau, Y[pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0:
            print(f"step {step} loss {float(loss.detach()):.3f}", flush=True)
    model.eval()
    return bank, len(rows)


def measure(model, bank, root=None, eval_cache: str = ".cache/eval") -> dict:
    from edgeav_train.center import val_query_frames
    from edgeav_train.evaluate import VisualCache, bank_metrics, load_inputs

    vcache, inputs = VisualCache(eval_cache), load_inputs(root, cache_dir=eval_cache)
    vq, vstacks = val_query_frames(model, root, cache_dir=eval_cache)
    out = {}
    for split, queries, stacks, tag in (
        ("val", vq, vstacks, "valqueries"),
        ("test", inputs.queries, inputs.query_frames, "queries"),
    ):
        r = bank_metrics(bank, vcache.embed(model, stacks, tag), queries)
        out[split] = {k: round(r[k], 4) for k in METRICS}
    return out


def markdown(result: dict) -> str:
    lines = [
        "Diagnostic (labels used, never shipped): the part stage 2 trains, taught by the true train events.",
        "",
        "| row | model | trains | steps | val top-1 / macro / top-5 | test top-1 / macro / top-5 |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        v, t = r["val"], r["test"]
        lines.append(
            f"| {r['name']} | `{r['model']}` | {r['train']} | {r['steps']} | "
            f"{v['top1_file']:.3f} / {v['top1_file_macro']:.3f} / {v['top5_file']:.3f} | "
            f"{t['top1_file']:.3f} / {t['top1_file_macro']:.3f} / {t['top5_file']:.3f} |"
        )
    lines += ["", "Commands:", ""] + [f"- {r['name']}: `{r['command']}`" for r in result["rows"]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    import json

    import torch

    from edgeav.models import load_model
    from edgeav_train.center import uncentred

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="the model stage 2 starts from (stage 1, or a distilled student)")
    ap.add_argument("--train", choices=("head", "visual"), default="head")
    ap.add_argument("--name", required=True, help="row name; rows of other names in the results file are kept")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--tau", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=".cache/gameplay")
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--eval-cache", default=".cache/eval", help="decoded val/test queries (shared with edgeav eval)")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    model = uncentred(load_model(a.model))
    bank, n = train_on_labels(model, a.train, a.steps, a.batch, a.lr, a.tau, a.seed, a.cache, a.corpus)
    row = {
        "name": a.name,
        "model": a.model,
        "train": a.train,
        "steps": a.steps,
        "batch": a.batch,
        "lr": a.lr,
        "train_events": n,
        **measure(model, bank, a.corpus, a.eval_cache),
        "seconds": round(time.perf_counter() - t0, 1),
        "command": command_line("research.label_ceiling", argv),
    }
    path = Path(a.out) / "label_ceiling.json"
    rows = [r for r in (json.loads(path.read_text())["rows"] if path.exists() else []) if r["name"] != a.name]
    result = {"rows": rows + [row]}
    write_result("label_ceiling", result, markdown(result), a.out)


if __name__ == "__main__":
    main()
