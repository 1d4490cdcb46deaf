"""Bundled defaults: a real clip, a small sound bank (indexed with the chosen model on first use, then cached)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgeav.backends.base import Backend
    from edgeav.bank import SoundBank

import os
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_CLIP = ASSETS / "clips" / "solarwolf-s11_10-40.mp4"
DEFAULT_SOUNDS = ASSETS / "sounds"
DEFAULT_CATEGORIES = DEFAULT_SOUNDS / "categories.csv"
DEFAULT_MODEL = "student"  # distilled from `teacher` into its space; its banks are indexed by the teacher


def cache_dir() -> Path:
    d = Path(os.environ.get("EDGEAV_CACHE", Path.home() / ".cache" / "edgeav"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def default_bank(backend: Backend) -> SoundBank:
    """The bundled sounds embedded for `backend`'s model (by its teacher for a student: edgeav.bank.bank_encoder);
    incremental, so later calls load the cached bank."""
    import sys

    from edgeav.bank import bank_encoder, index_sounds

    enc = bank_encoder(backend, warn=lambda m: print(m, file=sys.stderr))
    out = cache_dir() / "banks" / f"bundled-{enc.model_id}.npz"
    bank, _ = index_sounds(enc, [DEFAULT_SOUNDS], out, DEFAULT_CATEGORIES, progress=False, model_id=enc.model_id)
    return bank
