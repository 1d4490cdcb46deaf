"""House rules for suggestions, from a TOML file, applied before any output (terminal, JSONL, --save, --show).

    deny_sounds = ["solarwolf/explode.wav"]      # never suggested
    deny_categories = ["ui"]                      # never suggested
    allow_categories = ["shoot", "pickup"]        # only these (omit to allow all)
    min_repeat_s = 2.0                            # a sound that was the top suggestion is left out for this long
    [boost]                                       # added to the cosine score (brand sounds rise)
    "solarwolf/shoot.wav" = 0.15

Unknown keys, bank ids or categories that the bank does not have are errors (a typo must not silently do nothing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgeav.bank import SoundBank

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeav.errors import EdgeavError

KEYS = {"deny_sounds", "deny_categories", "allow_categories", "boost", "min_repeat_s"}


@dataclass
class Rules:
    deny_sounds: set[str] = field(default_factory=set)
    deny_categories: set[str] = field(default_factory=set)
    allow_categories: set[str] | None = None
    boost: dict[str, float] = field(default_factory=dict)
    min_repeat_s: float = 0.0
    _last_top: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path, bank: SoundBank) -> Rules:
        p = Path(path)
        if not p.exists():
            raise EdgeavError(f"rules file not found: {p}", "give a TOML file (see edgeav/rules.py for the keys)")
        try:
            d = tomllib.loads(p.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise EdgeavError(
                f"rules file {p} is not valid TOML: {' '.join(str(e).split())}", "fix its syntax"
            ) from None
        unknown = set(d) - KEYS
        if unknown:
            raise EdgeavError(
                f"unknown key {sorted(unknown)[0]!r} in rules file {p}", f"use only {', '.join(sorted(KEYS))}"
            )
        ids, cats = set(bank.ids), set(bank.categories)
        r = cls(
            set(d.get("deny_sounds", [])),
            set(d.get("deny_categories", [])),
            set(d["allow_categories"]) if "allow_categories" in d else None,
            {str(k): float(v) for k, v in d.get("boost", {}).items()},
            float(d.get("min_repeat_s", 0.0)),
        )
        for sid in sorted(r.deny_sounds | set(r.boost)):
            if sid not in ids:
                raise EdgeavError(
                    f"rules file {p} names sound {sid!r}, which is not in the bank",
                    "use bank ids (paths relative to the indexed folder, e.g. solarwolf/shoot.wav)",
                )
        for c in sorted(r.deny_categories | (r.allow_categories or set())):
            if c not in cats:
                raise EdgeavError(
                    f"rules file {p} names category {c!r}, which no sound in the bank has",
                    f"bank categories: {', '.join(sorted(cats))}",
                )
        if r.min_repeat_s < 0:
            raise EdgeavError(f"min_repeat_s must be ≥ 0 in {p}", "fix the value")
        return r

    def rank(self, scores: np.ndarray, idx: np.ndarray, bank: SoundBank, t: float, k: int) -> list[tuple[int, float]]:
        """Re-rank one window's candidates (bank indices `idx` with cosine `scores`): filter, boost, no repeats."""
        out = []
        for sc, j in zip(scores, idx):
            sid, cat = bank.ids[j], bank.categories[j]
            if sid in self.deny_sounds or cat in self.deny_categories:
                continue
            if self.allow_categories is not None and cat not in self.allow_categories:
                continue
            out.append((int(j), float(sc) + self.boost.get(sid, 0.0)))
        out.sort(key=lambda x: -x[1])
        if self.min_repeat_s > 0:
            # a sound that was the top suggestion within min_repeat_s is left out of this window entirely
            out = [(j, sc) for j, sc in out if t - self._last_top.get(bank.ids[j], -1e9) >= self.min_repeat_s]
            if out:
                self._last_top[bank.ids[out[0][0]]] = t
        return out[:k]
