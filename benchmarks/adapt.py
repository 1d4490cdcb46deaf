"""Adaptation measured, leave one game out: train the teacher (stage 1 + label-free stage 2, the shipped recipe) on
every game of the corpus but one, then adapt it to that game with `edgeav adapt` from the game's train clips
(unlabeled) and the full sound library; then fold in simulated user feedback. Top-1 and macro top-1 file accuracy on
the held-out game's test clips before and after, beside its blind prior and chance, and the time adaptation took.

Feedback is simulated from the event logs of the held-out game's *train* clips (a user judging suggestions on their
own footage): at `--verdicts` sampled events, the sound that really fired is accepted and the adapted model's top
suggestion, if different, rejected. Test clips are never judged.

    python -m benchmarks.adapt --game pathological
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, command_line, write_result


def _link_files(files: list[Path], folder: Path, base: Path) -> Path:
    """A folder of symlinks (keeping paths relative to `base`): a subset of the corpus as its own library/footage."""
    for f in files:
        dst = folder / f.relative_to(base)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            os.symlink(f.resolve(), dst)
    return folder


def feedback_verdicts(be, root, game: str, n: int, bank, seed: int):
    """Simulated verdicts on the held-out game's train clips (see module doc), embedded by backend `be`."""
    from edgeav.embed import PRE_ROLL_S
    from edgeav.feedback import Verdict, embed_moments
    from edgeav_train.corpus import load_clips, load_queries

    qs = load_queries(root, "train", {game})
    rng = np.random.default_rng(seed)
    picked = [qs[i] for i in sorted(rng.choice(len(qs), min(n, len(qs)), replace=False))]
    video = {c.clip_id: str(c.video) for c in load_clips(root, "train")}
    verdicts = []
    for clip in sorted({q.clip_id for q in picked}):
        mine = [q for q in picked if q.clip_id == clip]
        embs = embed_moments(be, video[clip], [max(0.0, q.t - PRE_ROLL_S) for q in mine])
        top = bank.search(embs, 1, backend="numpy")[1][:, 0]
        for q, e, j in zip(mine, embs, top):
            verdicts.append(Verdict(video[clip], q.t, q.sound_id, "accept", e.tolist(), be.model_id))
            if bank.ids[j] != q.sound_id:
                verdicts.append(Verdict(video[clip], q.t, bank.ids[j], "reject", e.tolist(), be.model_id))
    return verdicts


def reranked_metrics(model, inputs, bank, verdicts, model_id: str, vcache) -> dict:
    """Recommendation metrics with the feedback re-ranking `run --feedback` applies (`bank`: the model's)."""
    import torch

    from edgeav.feedback import FeedbackReranker
    from edgeav_train.evaluate import ranking_metrics

    rr = FeedbackReranker(verdicts, bank, model_id)
    with torch.no_grad():
        qv = vcache.embed(model, inputs.query_frames, "queries")
    scores = qv @ bank.embeddings.T + np.stack([rr.adjust(v) for v in qv])
    ranked = [[bank.ids[j] for j in np.argsort(-s)[:10]] for s in scores]
    return ranking_metrics(ranked, inputs.queries, dict(zip(bank.ids, bank.categories)))


def held_out_models(a: argparse.Namespace, root: Path, work: Path, others: tuple, lib_others: Path) -> tuple:
    """(stage 1, stage 2 towards the other games' sounds, stage 2 towards the whole library) model paths, each
    trained where missing on the other games' footage alone."""
    from edgeav_train.bank_distill import BankDistillConfig, bank_distill
    from edgeav_train.train import TrainConfig, train

    # 1. the teacher, never shown the held-out game's footage or sounds
    stage1 = work / "stage1" / "model.safetensors"
    if not stage1.exists():
        train(
            TrainConfig(
                cache=a.cache,
                model="teacher",
                out=str(stage1.parent),
                steps=a.steps,
                seed=a.seed,
                w_mix=1.0,
                mix_sounds=str(lib_others),
                games=others,
                progress=False,
            )
        )
    # stage 2 on the other games' footage, pointing into (a) their sounds only, (b) the whole library — the user's
    # library already holds the new game's sounds; (b) is the model that gets adapted
    blind = work / "before" / "model.safetensors"
    if not blind.exists():
        bank_distill(
            BankDistillConfig(
                model=str(stage1),
                sounds=str(lib_others),
                out=str(blind.parent),
                cache=a.cache,
                steps=a.stage2_steps,
                seed=a.seed,
                games=others,
            )
        )
    before = work / "before-full" / "model.safetensors"
    if not before.exists():
        bank_distill(
            BankDistillConfig(
                model=str(stage1),
                sounds=str(root / "sounds"),
                out=str(before.parent),
                cache=a.cache,
                steps=a.stage2_steps,
                seed=a.seed,
                games=others,
            )
        )
    return stage1, blind, before


def markdown(result: dict) -> str:
    ad, keys = result["adapt"], ("top1_file", "top1_file_macro", "top5_file", "top5_file_macro")
    lines = [
        f"Held-out game **{result['game']}** (teacher trained on {', '.join(result['trained_on'])}); its test split: "
        f"{result['n_queries']} events, {result['n_effects']} effects, bank of {result['bank_size']} (all games). "
        f"Adaptation: `edgeav adapt` on its {ad['clips']} train clips ({ad['footage_minutes']} min, unlabeled) in "
        f"{ad['seconds_total']:.0f} s with {ad['threads']} CPU thread(s) "
        f"(cache {ad.get('cache_s', 0):.0f} s, trunk features "
        f"{ad.get('features_s', 0):.0f} s, {ad['steps']} steps {ad['stage2_s']:.0f} s). "
        f"Feedback: {result['verdicts']['n']} simulated verdicts on its train clips. Command: `{result['command']}`.",
        "",
        "| | top-1 | macro top-1 | top-5 | macro top-5 |",
        "|---|---|---|---|---|",
    ]
    for name, r in [*result["rows"].items(), ("blind prior", result["blind_prior"]), ("chance", result["chance"])]:
        lines.append(f"| {name} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--game", default="pathological")
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--cache", default=".cache/gameplay", help="corpus cache with lite0 features (edgeav cache)")
    ap.add_argument("--work", default="runs/logo")
    ap.add_argument("--steps", type=int, default=400, help="stage-1 steps (the shipped teacher's)")
    ap.add_argument("--stage2-steps", type=int, default=600)
    ap.add_argument("--adapt-steps", type=int, default=300)
    ap.add_argument("--verdicts", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-cache", default=".cache/eval")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)

    from edgeav.backends.torch_backend import TorchBackend
    from edgeav.models import load_model
    from edgeav_train.adapt import AdaptConfig, adapt
    from edgeav_train.corpus import corpus_root, load_clips, load_sounds
    from edgeav_train.evaluate import VisualCache, corpus_bank, evaluate, load_inputs

    root = corpus_root(a.corpus)
    work = Path(a.work) / a.game
    games = sorted({c.game for c in load_clips(a.corpus)})
    if a.game not in games:
        raise SystemExit(f"unknown game {a.game}; the corpus has {', '.join(games)}")
    others = tuple(g for g in games if g != a.game)
    sounds = load_sounds(a.corpus)
    lib_others = _link_files(
        [root / s["file"] for s in sounds if s["game"] != a.game], work / "sounds-others", root / "sounds"
    )

    stage1, blind, before = held_out_models(a, root, work, others, lib_others)
    # 2. adaptation: edgeav adapt on the held-out game's train clips (unlabeled) with the whole library
    footage = _link_files(
        [c.video for c in load_clips(a.corpus, "train") if c.game == a.game], work / "footage", root / "clips"
    )
    import shutil

    import torch

    shutil.rmtree(work / "adapted", ignore_errors=True)  # time a fresh adaptation: cache, features and training
    t0 = time.perf_counter()
    rep = adapt(
        AdaptConfig(
            footage=str(footage),
            sounds=str(root / "sounds"),
            model=str(before),
            out=str(work / "adapted"),
            steps=a.adapt_steps,
            seed=a.seed,
        )
    )
    adapt_s = time.perf_counter() - t0

    # 3. evaluation on the held-out game's test clips
    inputs = load_inputs(a.corpus, (128, 96), (0.2, 0.4), games={a.game}, cache_dir=a.eval_cache)
    vcache = VisualCache(a.eval_cache)
    adapted = TorchBackend(rep["model"])  # its model serves evaluation, its id keys the verdicts
    res = {
        "before, stage 2 without its sounds": evaluate(load_model(str(blind)), inputs, a.corpus, vcache),
        "before": evaluate(load_model(str(before)), inputs, a.corpus, vcache),
        "adapted": evaluate(adapted.model, inputs, a.corpus, vcache),
    }
    bank = corpus_bank(adapted.model, a.corpus)
    verdicts = feedback_verdicts(adapted, a.corpus, a.game, a.verdicts, bank, a.seed)
    res["adapted+feedback"] = {
        "model": reranked_metrics(adapted.model, inputs, bank, verdicts, adapted.model_id, vcache)
    }
    keys = ("top1_file", "top1_file_macro", "top5_file", "top5_file_macro")
    result = {
        "game": a.game,
        "trained_on": list(others),
        "n_queries": res["before"]["n_queries"],
        "n_effects": res["before"]["n_effects"],
        "bank_size": res["before"]["bank_size"],
        "blind_prior": {k: res["before"]["blind_prior"][k] for k in keys},
        "chance": {k: res["before"]["chance"][k] for k in keys},
        "rows": {name: {k: r["model"][k] for k in keys} for name, r in res.items()},
        "adapt": {
            "seconds_total": round(adapt_s, 1),
            **rep["seconds"],
            "footage_minutes": rep["footage_minutes"],
            "clips": rep["clips"],
            "steps": a.adapt_steps,
            "threads": torch.get_num_threads(),
        },
        "verdicts": {"n": len(verdicts), "accepted": sum(v.verdict == "accept" for v in verdicts)},
        "command": command_line("adapt", argv),
    }
    write_result(f"adapt-{a.game}", result, markdown(result), a.out)


if __name__ == "__main__":
    main()
