"""`edgeav adapt` on footage made in the test: a soundtrack that plays two library files at known times. It finds
them (label-free), trains towards them, falls back to the soundtrack match when the library is not in the footage
and says so, resumes when interrupted, and lists bad footage it skipped."""

from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from conftest import ASSETS
from media import make_clip

LIB = ASSETS / "sounds" / "funnyboat"
PLAYS = {"kraah.ogg": (1.0, 4.0), "pam.ogg": (2.5, 6.0)}  # library id → start times (s)


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    from edgeav.io.audio import read_audio

    d = tmp_path_factory.mktemp("footage")
    rng = np.random.default_rng(0)
    for k in range(3):
        x = 0.003 * rng.standard_normal(8 * 16000).astype(np.float32)
        for sound, starts in PLAYS.items():
            wave = read_audio(LIB / sound, 16000).astype(np.float32)
            for t in starts:
                i = int(t * 16000)
                x[i : i + len(wave)] += 0.5 * wave[: len(x) - i]
        make_clip(d / f"clip{k}.mp4", seconds=8.0, flash_frame=None, soundtrack=x)
    (d / "broken.mp4").write_bytes(b"\x00" * 200)
    make_clip(d / "silent.mp4", seconds=2.0, audio_rate=None)
    return d


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from edgeav.models import create_model, save_model

    return str(save_model(create_model("tiny"), tmp_path_factory.mktemp("m") / "tiny"))


def _adapt(footage, tiny, out, sounds=LIB, **kw):
    from edgeav_train.adapt import AdaptConfig, adapt

    said = []
    rep = adapt(
        AdaptConfig(footage=str(footage), sounds=str(sounds), model=tiny, out=str(out), steps=6, **kw), echo=said.append
    )
    return rep, said


def test_adapt_finds_the_library_in_the_footage_and_trains_towards_it(footage, tiny, tmp_path):
    import json

    rep, said = _adapt(footage, tiny, tmp_path / "a")
    assert rep["targets"] == "mixed" and rep["trained"] == "visual"
    assert rep["library"]["playing"] == {s: 2 * rep["clips"] for s in PLAYS}  # every start, nothing else
    assert any("your footage plays 2 of your 4 sounds; 12 starts found" in x for x in said)
    found = {}
    for p in (tmp_path / "a" / "cache").glob("fingerprints-*/*.json"):
        d = json.loads(p.read_text())
        for t, j, _ in d["detections"]:
            found.setdefault(d["ids"][j], []).append(t)
    for sound, starts in PLAYS.items():
        assert all(min(abs(t - s) for s in starts) < 0.02 for t in found[sound]), found[sound]
    # bad footage is skipped and listed; the model is one `edgeav run` takes by path
    assert {"broken.mp4", "silent.mp4"} <= {p.split("/")[-1] for p in rep["skipped"]}
    assert any("skipped" in x and "broken.mp4" in x for x in said)
    from edgeav.models import load_model

    card = load_model(rep["model"]).card
    assert card.provenance["bank_distill"]["targets"] == "mixed"
    # the starts found become the adapted model's footage prior, which `edgeav run` ranks with
    from edgeav.adapt import AdaptConfig

    assert card.footage_starts == rep["library"]["playing"] and card.prior_weight == AdaptConfig.prior_weight > 0
    assert any("lean towards the sounds your footage plays" in x for x in said)


def test_a_library_the_footage_does_not_play_falls_back_and_says_so(footage, tiny, tmp_path):
    rep, said = _adapt(footage, tiny, tmp_path / "b", sounds=ASSETS / "sounds" / "monsterz")
    assert rep["targets"] == "soundtrack" and rep["library"]["starts"] == 0
    assert any("no library file was found" in x for x in said)
    from edgeav.models import load_model

    assert load_model(rep["model"]).card.footage_starts == {}  # nothing found: no prior


def test_interrupted_adapt_resumes_to_the_same_model(footage, tiny, tmp_path):
    whole, _ = _adapt(footage, tiny, tmp_path / "whole")
    part, _ = _adapt(footage, tiny, tmp_path / "part", stop_after=3)
    assert part["model"].endswith("checkpoint.pt")
    resumed, _ = _adapt(footage, tiny, tmp_path / "part")
    a, b = load_file(whole["model"]), load_file(resumed["model"])
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    # the resumed report counts the first run's time too (its cache was built then, so it costs nothing now)
    assert resumed["seconds"]["cache_s"] >= part["seconds"]["cache_s"] > 0


def test_adapt_teaches_the_event_head_from_the_same_starts(footage, tmp_path):
    import torch

    from edgeav.events import pick_onsets
    from edgeav.models import create_model, load_model, save_model
    from edgeav.models.card import ModelCard
    from edgeav.pipeline import ONSET_GAP
    from edgeav_train.event_eval import clip_scores
    from edgeav_train.events import FrameClips

    torch.manual_seed(0)
    m = create_model("tiny", event_widths=(4, 8), event_dim=8)
    src = str(save_model(m, tmp_path / "tiny_events", ModelCard(onset_threshold=0.5)))
    rep, said = _adapt(footage, src, tmp_path / "a", event_steps=3)
    assert rep["event_head"]["starts"] == 2 * len(PLAYS) * rep["clips"]  # every fingerprinted start, frame-exact
    adapted = load_model(rep["model"])
    # no event log on the user's footage: the threshold is the lowest detecting no more events than starts play
    th = rep["event_head"]["onset_threshold"]
    assert adapted.card.onset_threshold == th["set"] and th["was"] == 0.5
    assert th["detects"] <= th["starts"]
    assert any(f"onset threshold set from your footage: {th['set']}" in x for x in said)
    frames = FrameClips(Path(rep["model"]).parent.parent / "cache-events", ("train", "val"))
    scores = [clip_scores(adapted.events, f)[0] for f in frames.frames]
    lower = sum(len(pick_onsets(s, th["set"] - 0.125, ONSET_GAP)) for s in scores)
    assert th["set"] == -4.0 or lower > th["starts"]  # one step lower would fire more often than effects start
    before = load_model(src).state_dict()
    moved = [k for k, v in adapted.state_dict().items() if k.startswith("events.") and not torch.equal(v, before[k])]
    assert moved  # the head learned on the footage
