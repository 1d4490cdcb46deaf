"""Models: registry, backbones, attention, the AV model, and safetensors + JSON persistence."""
from edgeav.models.registry import register_model, list_models, model_config
from edgeav.models import zoo as _zoo  # noqa: F401  (registers the configurations)
from edgeav.models.av import AVConfig, AVModel
from edgeav.models.card import ModelCard
from edgeav.models.store import create_model, load_model, save_model

__all__ = ["register_model", "list_models", "model_config", "AVConfig", "AVModel", "ModelCard", "create_model", "load_model",
           "save_model"]
