"""Label-free detection of library sounds in a soundtrack (distill.fingerprint), checked against the event log
that ships with the bundled real gameplay clip (the log is only read here, to score the detector)."""
import json
from pathlib import Path

import numpy as np
import pytest

from distill.fingerprint import Templates, detect

ASSETS = Path(__file__).resolve().parents[1] / "edgeav" / "assets"


@pytest.fixture(scope="module")
def templates():
    return Templates(ASSETS / "sounds")


def _soundtrack(clip: Path, rate: int) -> np.ndarray:
    from edgeav.io import VideoFile

    v = VideoFile(clip, fps=None, sample_rate=rate)
    x = v.audio(0, v.duration + 1)
    v.close()
    return np.asarray(x, np.float64)


def test_detects_the_real_clips_effects_where_they_fire(templates):
    """The bundled funnyboat clip (real gameplay: music, overlapping shots) against the bundled library of 67
    sounds from six games: most logged effect starts are found within 60 ms, and most detections are real."""
    clip = ASSETS / "clips" / "funnyboat-s12_20-35.mp4"
    events = json.loads(clip.with_name(clip.stem + ".events.json").read_text())["sound_events"]
    found = [(t, templates.ids[j]) for t, j, _ in detect(_soundtrack(clip, 8000), templates)]
    hit = np.mean([any(s == e["sound_id"] and abs(t - e["t"]) < 0.06 for t, s in found) for e in events])
    real = np.mean([any(s == e["sound_id"] and abs(t - e["t"]) < 0.06 for e in events) for t, s in found])
    print(hit, real, len(found), len(events))
    assert len(events) > 20 and hit > 0.7 and real > 0.6, (hit, real, len(found))


def test_a_sound_is_found_at_any_gain_and_never_in_its_absence(templates):
    """Gain-invariant (a game plays effects at any volume), and silent on a soundtrack that lacks the sound."""
    rng = np.random.default_rng(0)
    j = templates.ids.index("funnyboat/kraah.ogg")
    from edgeav.io.audio import read_audio

    wave = read_audio(ASSETS / "sounds" / templates.ids[j], 8000)
    noise = 0.01 * rng.standard_normal(8000 * 6)
    x = noise.copy()
    for t, gain in ((1.0, 0.2), (3.5, 1.0)):
        i = int(t * 8000)
        x[i:i + len(wave)] += gain * wave[: len(x) - i]
    starts = [t for t, k, _ in detect(x, templates) if k == j]
    assert len(starts) == 2 and abs(starts[0] - 1.0) < 0.01 and abs(starts[1] - 3.5) < 0.01
    assert not [k for _, k, _ in detect(noise, templates) if k == j]
