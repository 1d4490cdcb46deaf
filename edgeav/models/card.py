"""The model card: what the runtime needs to know about a trained model beyond its architecture, typed.

Saved in the model's JSON under "card", beside the architecture (`AVConfig`). The runtime reads only these fields:
which teacher indexes the model's banks (and the hashes that prove it is the same one), and the calibrated
auto-foley gates. The training side records how the model was made (`trained_by`, `provenance`) for people and
for the recipes; nothing at run time depends on those.
"""

from __future__ import annotations

import re
from dataclasses import Field, asdict, dataclass, field, fields
from typing import Any

from edgeav.errors import EdgeavError

_SHA1 = re.compile(r"^[0-9a-f]{40}$")

# The fields that older model files kept in a free-form "extra" dict; every other key there was provenance.
_CARD_KEYS = ("teacher", "teacher_sha1", "teacher_audio_sha1", "foley_rate", "foley_threshold", "trained_by")


@dataclass(frozen=True)
class ModelCard:
    teacher: str | None = None
    """Model whose audio encoder indexes this model's sound banks (a distilled student's teacher); None = itself."""
    teacher_sha1: str | None = None
    """SHA-1 of the teacher's weights file when this model was distilled from it."""
    teacher_audio_sha1: str | None = None
    """SHA-1 of the teacher's audio side (audio encoder + projector): banks it indexed serve this model."""
    foley_rate: float | None = None
    """Auto-foley: fraction of windows that get an effect where the picture changes most (calibrated on val)."""
    foley_threshold: float | None = None
    """Auto-foley: minimum top score, for models without a calibrated rate (calibrated on val)."""
    onset_threshold: float | None = None
    """Event head: onset logit a frame's score must reach to be an event (calibrated on val for the best F1)."""
    footage_starts: dict[str, int] = field(default_factory=dict)
    """Adapted models: starts of each library sound found playing in the footage adapted on (edgeav adapt)."""
    prior_weight: float = 0.0
    """Weight of those starts' log-frequency in the ranking (edgeav.prior; 0 = not used)."""
    trained_by: str = ""
    """The command that reproduces this model (see docs/training.md)."""
    test_metrics: dict[str, Any] = field(default_factory=dict)
    """Accuracy on the corpus's test split at oracle timing (edgeav_train.evaluate), as measured when it shipped."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """Training configurations of every stage; for people, never read at run time."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, where: str = "model card") -> None:
        """A clear error naming the first field that does not hold what it must."""

        def bad(name: str, want: str) -> EdgeavError:
            return EdgeavError(
                f"{where}: field {name!r} must be {want}, got {getattr(self, name)!r}",
                "re-save the model with edgeav (its JSON was edited or damaged)",
            )

        if self.teacher is not None and (not isinstance(self.teacher, str) or not self.teacher):
            raise bad("teacher", "a model name or path")
        for name in ("teacher_sha1", "teacher_audio_sha1"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, str) and _SHA1.match(v)):
                raise bad(name, "a 40-digit hex SHA-1")
        rate = self.foley_rate
        if rate is not None and not (isinstance(rate, (int, float)) and not isinstance(rate, bool) and 0 < rate <= 1):
            raise bad("foley_rate", "a number in (0, 1]")
        thr = self.foley_threshold
        if thr is not None and not (isinstance(thr, (int, float)) and not isinstance(thr, bool) and -1 <= thr <= 1):
            raise bad("foley_threshold", "a cosine score in [-1, 1]")
        ot = self.onset_threshold
        if ot is not None and not (isinstance(ot, (int, float)) and not isinstance(ot, bool)):
            raise bad("onset_threshold", "a number (an onset logit)")
        fs = self.footage_starts
        if not (isinstance(fs, dict) and all(isinstance(k, str) and type(n) is int and n >= 0 for k, n in fs.items())):
            raise bad("footage_starts", "a JSON object of sound id → starts (a count)")
        pw = self.prior_weight
        if not (isinstance(pw, (int, float)) and not isinstance(pw, bool) and pw >= 0):
            raise bad("prior_weight", "a number ≥ 0")
        if not isinstance(self.trained_by, str):
            raise bad("trained_by", "a command line")
        for name in ("test_metrics", "provenance"):
            if not isinstance(getattr(self, name), dict):
                raise bad(name, "a JSON object")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any], where: str = "model card") -> ModelCard:
        if not isinstance(d, dict):
            raise EdgeavError(f"{where} must be a JSON object, got {type(d).__name__}", "re-save the model with edgeav")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise EdgeavError(
                f"{where}: unknown field {unknown[0]!r}", f"a model card has only {', '.join(sorted(known))}"
            )
        card = cls.__new__(cls)
        for f in fields(cls):
            object.__setattr__(card, f.name, d.get(f.name, _default(f)))
        card.validate(where)
        return card

    @classmethod
    def from_legacy_extra(cls, extra: dict[str, Any], where: str = "model card") -> ModelCard:
        """The card of a model file that predates it: the runtime's keys of its "extra" dict, the rest provenance."""
        card = {k: extra[k] for k in _CARD_KEYS if k in extra}
        card["test_metrics"] = extra.get("test_metrics", {})
        card["provenance"] = {k: v for k, v in extra.items() if k not in _CARD_KEYS and k != "test_metrics"}
        return cls.from_json(card, where)

    def replace(self, **changes: Any) -> ModelCard:
        return ModelCard.from_json({**self.to_json(), **changes})


def _default(f: Field) -> Any:
    from dataclasses import MISSING

    return f.default_factory() if f.default_factory is not MISSING else f.default
