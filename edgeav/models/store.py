"""Model files: `<stem>.safetensors` (weights, no pickle) + `<stem>.json` (the AVConfig's fields and, under "card",
the ModelCard). Shipped names resolve to edgeav/assets/models/<name>.*; anything else is a path."""

from __future__ import annotations

import json
from pathlib import Path

from edgeav.atomic import atomic_path, write_json
from edgeav.errors import EdgeavError
from edgeav.models.av import AVConfig, AVModel
from edgeav.models.card import ModelCard
from edgeav.models.registry import list_models, model_config

ASSET_MODELS = Path(__file__).resolve().parents[1] / "assets" / "models"


def create_model(name: str, **overrides) -> AVModel:
    """A fresh (untrained heads) model of a registered configuration."""
    return AVModel(model_config(name, **overrides))


def _stem(path: str | Path) -> Path:
    """The path without a .safetensors/.json ending; other dots are part of the name (runs/bd-t0.25-k100)."""
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".safetensors", ".json") else p


def _with(stem: Path, ext: str) -> Path:
    return stem.with_name(stem.name + ext)


def model_files(path: str | Path) -> tuple[Path, Path]:
    """(weights, config) paths of the model at `path` (with or without its .safetensors/.json ending)."""
    stem = _stem(path)
    return _with(stem, ".safetensors"), _with(stem, ".json")


def model_json(cfg: AVConfig, card: ModelCard) -> dict:
    """A model's JSON: the architecture's fields and its card."""
    return {**cfg.to_json(), "card": card.to_json()}


def read_card(d: dict, where: str) -> ModelCard:
    """The card of a model's JSON (files that predate it keep its fields in "extra")."""
    if "card" in d:
        return ModelCard.from_json(d["card"], f"model card of {where}")
    return ModelCard.from_legacy_extra(d.get("extra", {}), f"model card of {where}")


def save_model(model: AVModel, path: str | Path, card: ModelCard | None = None) -> Path:
    """Weights and JSON of `model`, atomically; `card` (default: the model's own) is saved with it."""
    from safetensors.torch import save_file

    if getattr(model, "deployed", False):  # folded weights would not load into the trainable form
        raise ValueError(
            "a deploy copy (edgeav.models.rep.deploy_form) is for inference only: save the model it was made from"
        )
    stem = _stem(path)
    card = card or model.card
    sd = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(_with(stem, ".safetensors")) as tmp:
        save_file(sd, str(tmp))
    write_json(_with(stem, ".json"), model_json(model.cfg, card))
    return _with(stem, ".safetensors")


def audio_sha1(model: AVModel) -> str:
    """SHA-1 of what a sound bank depends on: the audio encoder and the shared projector. Banks indexed by one model
    serve another whose audio side hashes the same (a teacher re-shipped with a new visual calibration, say)."""
    import hashlib

    h = hashlib.sha1()
    for k, v in sorted(model.state_dict().items()):
        if k.startswith(("audio.", "projector.")):
            t = v.detach().cpu().contiguous()
            h.update(f"{k}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.numpy().tobytes())
    return h.hexdigest()


def resolve_model_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".safetensors", ".json") or p.exists() or _with(_stem(p), ".safetensors").exists():
        return _with(_stem(p), ".safetensors")
    shipped = ASSET_MODELS / f"{name_or_path}.safetensors"
    if shipped.exists():
        return shipped
    if name_or_path in list_models():
        raise EdgeavError(
            f"model {name_or_path!r} is registered but has no shipped weights",
            f"train it (edgeav train) or use a shipped one: "
            f"{', '.join(sorted(x.stem for x in ASSET_MODELS.glob('*.safetensors')))}",
        )
    raise EdgeavError(
        f"model not found: {name_or_path}", f"give a registry name ({', '.join(list_models())}) or a .safetensors path"
    )


def load_model(name_or_path: str) -> AVModel:
    from safetensors.torch import load_file

    path = resolve_model_path(name_or_path)
    cfg_path = path.with_suffix(".json")
    if not path.exists() or not cfg_path.exists():
        raise EdgeavError(
            f"model files missing: need {path.name} and {cfg_path.name} in {path.parent}",
            "export both with save_model / edgeav train",
        )
    try:
        d = json.loads(cfg_path.read_text())
        card = read_card(d, cfg_path.name)
        cfg = AVConfig.from_json(d)
        cfg.pretrained = False  # weights come from the file
        model = AVModel(cfg, card)
        sd = load_file(str(path))
        missing, unexpected = model.load_state_dict(sd, strict=False)
    except EdgeavError:
        raise
    except Exception as e:
        raise EdgeavError(
            f"cannot load model {path}: {' '.join(str(e).split())[:160]}",
            "the file is not an edgeav model or is damaged; re-download or retrain it",
        ) from None
    if missing or unexpected:
        raise EdgeavError(
            f"model {path} does not match its config ({len(missing)} missing, {len(unexpected)} "
            f"unexpected tensors, e.g. {(missing or unexpected)[0]})",
            "use the .json saved with it",
        )
    return model.eval()
