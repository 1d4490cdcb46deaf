"""Explanations: where the model looked for each suggestion.

Attention models: the visual encoder's attention maps (one per resolution, each a softmax over positions), upsampled
to the frame and averaged. Models without attention: an occlusion map (how much the top sound's score drops when a
patch of the frame stack is greyed out). Written as PNG: the frame, the heatmap over it, the suggestion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgeav.backends.base import Backend
    from edgeav.bank import SoundBank
    from edgeav.events import Event

import json
from pathlib import Path

import numpy as np


def attention_heatmap(attn: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Average of the per-resolution maps, each normalized to max 1 and upsampled to (w, h)."""
    import cv2

    maps = [
        cv2.resize((a[0] / max(a[0].max(), 1e-12)).astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        for a in attn
    ]
    m = np.mean(maps, axis=0)
    return m / max(m.max(), 1e-12)


def occlusion_heatmap(backend: Backend, stack: np.ndarray, target: np.ndarray, grid: int = 6) -> np.ndarray:
    """Score drop of the target embedding when each cell of a grid×grid partition is greyed in every frame."""
    h, w = stack.shape[1:3]
    ys, xs = np.linspace(0, h, grid + 1).astype(int), np.linspace(0, w, grid + 1).astype(int)
    variants = []
    for i in range(grid):
        for j in range(grid):
            s = stack.copy()
            s[:, ys[i] : ys[i + 1], xs[j] : xs[j + 1]] = 128
            variants.append(s)
    base = float(backend.encode_visual(stack[None])[0] @ target)
    drops = base - backend.encode_visual(np.stack(variants)) @ target
    import cv2

    m = cv2.resize(np.maximum(drops.reshape(grid, grid), 0).astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    return m / max(m.max(), 1e-12)


def explanation_image(
    backend: Backend, bank: SoundBank, stack: np.ndarray, t: float, top: dict, method: str | None = None
) -> np.ndarray:
    """A BGR image: the frame at the window's moment beside the model's heatmap over it, with the top suggestion.
    `method`: attention (the model's own maps) or occlusion (for models without attention); None = what it has."""

    method = method or ("attention" if backend.cfg.attention else "occlusion")
    if method == "attention":
        _, attn = backend.encode_visual(stack[None], return_attention=True)
        heat = attention_heatmap(attn, (stack.shape[2], stack.shape[1]))
    else:
        heat = occlusion_heatmap(backend, stack, bank.embeddings[bank.ids.index(top["sound"])])
    label = f"t={t + 0.2:.2f}s  {top['sound']}  [{top['category']}]  score {top['score']:.2f}"
    return overlay_image(stack[0], heat, label, f"where the model looked ({method})")  # frame 0: the sound's moment


def overlay_image(frame: np.ndarray, heat: np.ndarray, label: str, caption: str) -> np.ndarray:
    """A BGR image: the RGB frame beside the heatmap over it, under a bar with the label and caption."""
    import cv2

    scale = 4
    big = cv2.resize(frame, (frame.shape[1] * scale, frame.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    hm = cv2.applyColorMap((cv2.resize(heat, big.shape[1::-1]) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    over = cv2.addWeighted(cv2.cvtColor(big, cv2.COLOR_RGB2BGR), 0.55, hm, 0.45, 0)
    panel = np.concatenate([cv2.cvtColor(big, cv2.COLOR_RGB2BGR), over], axis=1)
    bar = np.full((56, panel.shape[1], 3), 30, np.uint8)
    cv2.putText(bar, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
    cv2.putText(bar, caption, (8, 46), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (180, 180, 180), 1)
    return np.concatenate([bar, panel], axis=0)


class Explainer:
    def __init__(self, folder: str | Path, backend: Backend, bank: SoundBank) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.backend, self.bank = backend, bank
        self.index = open(self.folder / "explanations.jsonl", "w", buffering=1)
        self.method = "attention" if backend.cfg.attention else "occlusion"

    def explain(self, t: float, stack: np.ndarray, recs: list[dict]) -> Path | None:
        import cv2

        if not recs:
            return None
        path = self.folder / f"t{t:08.2f}.png"
        cv2.imwrite(str(path), explanation_image(self.backend, self.bank, stack, t, recs[0], self.method))
        self.index.write(json.dumps({"t": t, "image": path.name, "method": self.method, **recs[0]}) + "\n")
        return path

    def explain_event(self, ev: Event, recs: list[dict]) -> Path | None:
        """The event's frame beside the event head's attention on it (its last conv level), with the top sound."""
        label = f"event t={ev.t:.2f}s ({ev.confidence:.2f})"
        return self._by_head(f"e{ev.t:08.2f}.png", {"type": "event", "t": ev.t}, ev.frame, ev.attention, recs, label)

    def explain_named(self, t: float, frame: np.ndarray, attention: np.ndarray, recs: list[dict]) -> Path | None:
        """A window the event head named: the frame where its sound would start beside the head's attention."""
        return self._by_head(f"t{t:08.2f}.png", {"t": t}, frame, attention, recs, f"window t={t:.2f}s")

    def _by_head(
        self, name: str, line: dict, frame: np.ndarray | None, attn: np.ndarray | None, recs: list[dict], label: str
    ) -> Path | None:
        """`frame` beside the event head's attention on it, with the top sound; a line of the index."""
        import cv2

        if not recs or frame is None or attn is None:
            return None
        heat = attention_heatmap([attn[None]], (frame.shape[1], frame.shape[0]))
        top = recs[0]
        label = f"{label}  {top['sound']}  [{top['category']}]  {top['score']:.2f}"
        path = self.folder / name
        cv2.imwrite(str(path), overlay_image(frame, heat, label, "where the event head looked (attention)"))
        self.index.write(json.dumps({**line, "image": path.name, "method": "attention", **top}) + "\n")
        return path

    def close(self) -> None:
        self.index.close()
