"""Models: registry, backbones, attention, the AV model, and safetensors + JSON persistence."""

from edgeav.models import zoo as _zoo  # noqa: F401  (registers the configurations)
from edgeav.models.av import AVConfig, AVModel
from edgeav.models.card import ModelCard
from edgeav.models.registry import list_models, model_config, register_model
from edgeav.models.store import create_model, load_model, save_model

__all__ = [
    "register_model",
    "list_models",
    "model_config",
    "AVConfig",
    "AVModel",
    "ModelCard",
    "create_model",
    "load_model",
    "save_model",
]
