"""Model registry (timm-style): `@register_model` factories, `create_model(name, **overrides)`, `list_models()`.

A registered name maps to a config dataclass (`AVConfig`); a shipped name also has weights in edgeav/assets/models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgeav.models.av import AVConfig

from collections.abc import Callable

_REGISTRY: dict[str, Callable] = {}


def register_model(fn: Callable) -> Callable:
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_config(name: str, **overrides: Any) -> AVConfig:
    if name not in _REGISTRY:
        from edgeav.errors import EdgeavError

        raise EdgeavError(f"unknown model {name!r}", f"choose one of {', '.join(list_models())} or give a model file")
    import dataclasses

    return dataclasses.replace(_REGISTRY[name](), **overrides)
