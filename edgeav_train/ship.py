"""Ship a trained model as a registry default: edgeav/assets/models/<name>.{safetensors,json}, its card completed
with the command that trained it, its test-split summary and the auto-foley gates calibrated on val.

    python -m edgeav_train.ship runs/student/soup-centred.safetensors --name student \
        --results runs/student/eval.json --command "edgeav train recipe student"
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from edgeav.atomic import write_json
from edgeav.models.store import ASSET_MODELS, model_files, model_json, read_card


def ship(model_path: str, name: str, results: str, command: str) -> Path:
    from edgeav.models import AVConfig

    weights, config = model_files(model_path)
    d = json.loads(config.read_text())
    cfg, card = AVConfig.from_json(d), read_card(d, config.name)
    res = json.loads(Path(results).read_text())
    cfg.name = name
    card = card.replace(
        foley_threshold=res["foley"]["threshold"],
        foley_rate=res["foley"]["event_rate"],
        trained_by=command,
        test_metrics={
            "model": {k: round(v, 4) for k, v in res["model"].items()},
            "correlation_acc": round(res["correlation"]["correlation_acc"], 4),
        },
    )
    if card.teacher and not card.teacher_audio_sha1:  # a student distilled before the hash was recorded
        card = _with_teacher_hashes(card)
    ASSET_MODELS.mkdir(parents=True, exist_ok=True)
    if weights.resolve() != (ASSET_MODELS / f"{name}.safetensors").resolve():
        shutil.copyfile(weights, ASSET_MODELS / f"{name}.safetensors")  # else: re-calibrating a shipped model
    write_json(ASSET_MODELS / f"{name}.json", model_json(cfg, card))
    return ASSET_MODELS / f"{name}.safetensors"


def _with_teacher_hashes(card):
    from edgeav.atomic import sha1_file
    from edgeav.models import load_model
    from edgeav.models.store import audio_sha1, resolve_model_path

    path = resolve_model_path(card.teacher)
    digest = sha1_file(path)
    if card.teacher_sha1 not in (None, digest):
        raise SystemExit(
            f"{card.teacher} is no longer the teacher this student was distilled from; ship the student "
            f"before replacing its teacher"
        )
    return card.replace(teacher_sha1=digest, teacher_audio_sha1=audio_sha1(load_model(str(path))))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--name", default="teacher")
    ap.add_argument("--results", required=True)
    ap.add_argument("--command", required=True)
    a = ap.parse_args()
    print(ship(a.model, a.name, a.results, a.command))
