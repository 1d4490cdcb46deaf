"""`edgeav adapt`'s configuration. The work is the training package's (edgeav_train.adapt), imported when the
command runs, so the runtime's command line starts without it."""

from __future__ import annotations

from dataclasses import dataclass

from edgeav.defaults import DEFAULT_MODEL


@dataclass
class AdaptConfig:
    footage: str
    """Folder of your videos (unlabeled; a few minutes is enough)."""
    sounds: str
    """Your sound library (folder)."""
    model: str = DEFAULT_MODEL
    """Model to adapt: registry name or .safetensors path."""
    out: str = "runs/adapted"
    """Folder for the footage cache, checkpoints and the adapted model."""
    steps: int = 300
    """Adaptation steps (batch 256)."""
    event_steps: int = 300
    """Event head fine-tuning steps on the starts found in the footage (models with an event head; 0 = keep it).
    The count that met the adaptation aim in the most held-out games' val clips (research.adapt_event_steps)."""
    prior_weight: float = 0.02
    """How much the footage's own counts of each sound (the starts found playing in it) weigh in the adapted
    model's ranking (edgeav.prior; 0 = not at all; `edgeav run --prior-weight` overrides it). The default is the
    weight that met the adaptation aim in the most held-out games' val clips (benchmarks.adapt_events)."""
    feedback: str = ""
    """Your verdicts file: those on this footage teach the event head (accepted: that sound there; rejected: pushed
    away there), and all are re-embedded for the adapted model's re-ranking."""
    seed: int = 0
    """Seed of the windows drawn."""
    stop_after: int = 0
    """Stop after N steps (time-boxed; run the same command again to resume); 0 = run to the end."""
