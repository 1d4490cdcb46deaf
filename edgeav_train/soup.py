"""A uniform model soup: one model whose weights are the mean of models fine-tuned from the same start (stage 2 run
with different seeds over one stage-1 model). Same size and cost as each ingredient; fine-tunes of one start stay in
one basin, where the mean of their weights is itself a working model (Wortsman et al., 2022, "Model soups").
Measured on the shipped student's recipe (research/results/student_soups.md): over three stage-1 seeds the soups'
test top-1 averaged 0.467 against 0.453 for single stage-2 runs, macro top-1 0.146 against 0.135.

    python -m edgeav_train.soup runs/a/model.safetensors runs/b/model.safetensors -o runs/soup
"""

from __future__ import annotations

from pathlib import Path

import torch

from edgeav.errors import EdgeavError
from edgeav.models import load_model, save_model


def soup(paths: list[str], out: str | Path) -> Path:
    if len(paths) < 2:
        raise EdgeavError("a soup needs at least two models", "give the stage-2 runs of several seeds")
    models = [load_model(p) for p in paths]  # a missing or wrong file: load_model's one-line error
    starts = {p: m.card.provenance.get("bank_distill", {}).get("model") for p, m in zip(paths, models)}
    if len(set(starts.values())) > 1:  # weights of different starts do not average into a working model
        raise EdgeavError(
            f"these models were fine-tuned from different starts: {starts}",
            "soup stage-2 runs of one stage-1 model only",
        )
    shape = {k: v.shape for k, v in models[0].state_dict().items()}
    for p, m in zip(paths[1:], models[1:]):
        if m.cfg.to_json() != models[0].cfg.to_json() or {k: v.shape for k, v in m.state_dict().items()} != shape:
            raise EdgeavError(f"{p} is not the same architecture as {paths[0]}", "soup runs of one recipe only")
    states = [m.state_dict() for m in models]
    mean = {
        k: torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype) if v.is_floating_point() else v
        for k, v in states[0].items()
    }  # integer buffers (batch-norm step counts) are not weights
    models[0].load_state_dict(mean)
    card = models[0].card  # the first's card, with the ingredients recorded
    return save_model(models[0], out, card.replace(provenance={**card.provenance, "soup": [str(p) for p in paths]}))


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()
    print(f"model saved: {soup(a.models, a.out)}")
