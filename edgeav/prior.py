"""The footage prior: how often each library sound starts in the footage a model was adapted on, as a ranking bias.

`edgeav adapt` finds the library's own files playing in the user's soundtrack (label-free) and keeps the count of
starts per sound in the adapted model's card. The event head is trained with logit-adjusted losses, so its cosine
scores rank as if every sound were equally frequent; adding `weight · log p(sound)` (p from those counts, add-one
smoothed over the bank) moves the ranking towards the sounds the footage actually plays — with weight = the
training temperature (0.07) that is the logit adjustment undone for the footage's own frequencies (Menon et al.
2021), lower keeps more of the rare sounds. Sounds the footage never played keep the smoothed floor, so they can
still win where the picture says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def prior_bias(starts: Mapping[str, int], ids: Sequence[str], weight: float) -> np.ndarray | None:
    """Score bias per bank entry (`ids` order), 0 for the most-played sound and negative below it; None when off
    (no weight or no counts)."""
    if weight <= 0 or not starts:
        return None
    n = np.array([max(0, int(starts.get(i, 0))) for i in ids], np.float64)
    log_p = np.log((n + 1.0) / (n.sum() + len(ids)))
    return (weight * (log_p - log_p.max())).astype(np.float32)
