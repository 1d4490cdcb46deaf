"""Training-side commands, reached lazily from `edgeav` (the runtime never imports this at module level)."""
from __future__ import annotations

import json
from pathlib import Path


def build_cache_cmd(root: str, out: str, fps: float, width: int, height: int, layout: str, workers: int,
                    vggsound_csv: str | None) -> None:
    from distill.builder import CacheConfig, build_cache

    m = build_cache(root, out, CacheConfig(fps=fps, width=width, height=height), layout, workers, vggsound_csv)
    size = sum(p.stat().st_size for p in Path(out, "shards").glob("*.npy"))
    print(f"cache {out}: {len(m['clips'])} clips ({m['_built']} built now in {m['_seconds']:.0f} s), "
          f"{size / 1e9:.2f} GB, {len(m['bad'])} bad")
    for path, why in m["bad"].items():
        print(f"  skipped {path}: {why}")


def train_cmd(cache_dir, model, out, steps, clips_per_batch, windows_per_clip, lr, temperature, w_contrastive,
              w_correspondence, w_mix, mix_sounds, seed) -> None:
    from distill.train import TrainConfig, train

    path = train(TrainConfig(cache=cache_dir, model=model, out=out, steps=steps, clips_per_batch=clips_per_batch,
                             windows_per_clip=windows_per_clip, lr=lr, temperature=temperature,
                             w_contrastive=w_contrastive, w_correspondence=w_correspondence, w_mix=w_mix,
                             mix_sounds=mix_sounds, seed=seed))
    print(f"model saved: {path}")


def eval_cmd(model: str, out: str | None, corpus: str | None, bank_model: str | None = None) -> None:

    from distill.evaluate import evaluate, load_inputs
    from distill.report import format_eval
    from edgeav.atomic import write_json
    from edgeav.models import load_model

    if model.endswith((".onnx.json", ".trt.json")):  # an exported model, measured through its runtime backend
        from distill.evaluate import BackendModel
        from edgeav.backends import load_backend

        precision = json.loads(Path(model).read_text()).get("precision", "fp32") if Path(model).exists() else "fp32"
        m = BackendModel(load_backend(model, precision=precision))  # the precision the file holds
    else:
        m = load_model(model)
    # a student is searched against the bank its teacher indexed, as `run` does (edgeav.bank.bank_encoder)
    bank_model = bank_model or m.card.teacher
    if bank_model:
        print(f"bank indexed by {bank_model}")
    # inputs are decoded once at the teacher's 128×96 and resized for smaller students
    res = evaluate(m, load_inputs(corpus, (128, 96), m.cfg.frame_offsets), corpus,
                   bank_model=load_model(bank_model) if bank_model else None)
    print(format_eval(res))
    if out:
        write_json(out, res)
