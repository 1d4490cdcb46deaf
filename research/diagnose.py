"""Diagnostics: how well the audio encoder alone maps the footage's soundtrack at each test event to the clean bank
file that fired — the ceiling for anything the visual side learns from audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeav.embed import embed_mels
from edgeav_train.corpus import load_queries
from edgeav_train.evaluate import bank_metrics, corpus_bank


def query_mels(cache: str | Path, queries, pre_roll: float = 0.2) -> np.ndarray:
    cache = Path(cache)
    mels, out = {}, []
    for q in queries:
        if q.clip_id not in mels:
            mels[q.clip_id] = np.load(cache / "shards" / f"{q.clip_id}.mel.npy", mmap_mode="r")
        m = mels[q.clip_id]
        k = max(0, int(round((q.t - pre_roll) * 100)))
        w = np.asarray(m[k : k + 100], np.float32)
        out.append(np.pad(w, ((0, 100 - len(w)), (0, 0)), constant_values=float(np.log(1e-6))))
    return np.stack(out)


def audio_to_bank(model, cache=".cache/gameplay", root=None) -> dict:
    queries = load_queries(root, "test")
    bank = corpus_bank(model, root)
    a = embed_mels(model, query_mels(cache, queries))
    return bank_metrics(bank, a, queries)


if __name__ == "__main__":
    import sys

    import torch

    from edgeav.models import load_model

    torch.set_num_threads(1)
    for p in sys.argv[1:]:
        r = audio_to_bank(load_model(p))
        print(p, {k: round(v, 3) for k, v in r.items() if k.startswith(("top1", "top5_file"))})
