"""Feedback: verdicts stored append-only, folded back as contextual re-ranking (an accepted sound rises where the
screen looks like the judged moment); `edgeav feedback` on a run's JSONL; `edgeav adapt` on a folder of footage."""

import json

import numpy as np
import pytest
import torch

from edgeav import EdgeavError
from edgeav.backends.torch_backend import TorchBackend
from edgeav.bank import SoundBank
from edgeav.display import key_action
from edgeav.feedback import FeedbackReranker, FeedbackStore, Verdict, record_run_verdicts
from edgeav.pipeline import RunConfig, run
from edgeav.steps import rank_window

from conftest import ASSETS, tiny_model_and_bank

CLIP = ASSETS / "clips" / "funnyboat-s12_20-35.mp4"


def _unit(x):
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x)


def test_store_is_append_only_and_damage_is_a_clear_error(tmp_path):
    store = FeedbackStore(tmp_path / "fb.jsonl")
    store.append([Verdict("a.mp4", 1.0, "x", "accept", [1.0, 0.0], "m")])
    first = (tmp_path / "fb.jsonl").read_text()
    store.append([Verdict("a.mp4", 2.0, "y", "reject", [0.0, 1.0], "m")])
    text = (tmp_path / "fb.jsonl").read_text()
    assert text.startswith(first) and len(store.load()) == 2
    with pytest.raises(EdgeavError, match="unknown verdict"):
        store.append([Verdict("a.mp4", 3.0, "y", "maybe", [0.0, 1.0], "m")])
    (tmp_path / "fb.jsonl").write_text(text + "{broken\n")
    with pytest.raises(EdgeavError, match="line 3"):
        store.load()


def test_reranking_is_contextual_and_bounded():
    bank = SoundBank(["a", "b", "c"], ["", "", ""], np.eye(3, dtype=np.float32), ["", "", ""])
    here, elsewhere = _unit([1, 0.2, 0.9]), _unit([0, 1, 0])
    verdicts = [
        Verdict("v", 1.0, "c", "accept", here.tolist(), "m"),
        Verdict("v", 2.0, "a", "reject", here.tolist(), "m"),
        Verdict("v", 3.0, "b", "accept", here.tolist(), "other-model"),
    ]
    rr = FeedbackReranker(verdicts, bank, "m", weight=0.3)
    assert rr.n == 2 and rr.skipped_other_model == 1
    d_here, d_far = rr.adjust(here), rr.adjust(elsewhere)
    assert d_here[2] > 0.2 and d_here[0] < -0.2 and d_here[1] == 0  # where it was judged
    assert np.abs(d_far).max() < 0.01  # not elsewhere
    before = [j for j, _ in rank_window(here[None], bank, 3, "numpy")]
    after = [j for j, _ in rank_window(here[None], bank, 3, "numpy", reranker=rr)]
    assert before == [0, 2, 1] and after == [2, 0, 1]
    many = [Verdict("v", float(i), "c", "accept", here.tolist(), "m") for i in range(50)]
    assert FeedbackReranker(many, bank, "m", weight=0.3).adjust(here)[2] <= 0.3 + 1e-6  # bounded


def test_viewer_keys():
    assert key_action(ord("a")) == "accept" and key_action(ord("r")) == "reject"
    assert key_action(ord("q")) == "quit" and key_action(255, visible=False) == "quit" and key_action(255) is None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("fb")
    model, bank = tiny_model_and_bank(d)
    jsonl = d / "run.jsonl"
    run(RunConfig(str(CLIP), bank=str(bank), model=model, jsonl=str(jsonl), quiet=True, hop=1.0, top_k=10))
    return d, model, bank, jsonl


def _ranks(jsonl, t):
    rec = next(json.loads(x) for x in jsonl.read_text().splitlines() if abs(json.loads(x)["t"] - t) < 1e-6)
    return [r["sound"] for r in rec["recommendations"]]


def test_feedback_command_and_run_with_feedback(tiny_run, tmp_path):
    d, model, bank, jsonl = tiny_run
    before3, before6 = _ranks(jsonl, 3.0), _ranks(jsonl, 6.0)
    lifted, rejected = before3[6], before6[0]
    store = tmp_path / "verdicts.jsonl"
    vs = record_run_verdicts(str(jsonl), str(CLIP), model, str(store), [f"3={lifted}"], ["6"])
    assert [(v.t, v.sound, v.verdict) for v in vs] == [(3.0, lifted, "accept"), (6.0, rejected, "reject")]
    # a verdict marked in the JSONL itself is read too
    lines = jsonl.read_text().splitlines()
    marked = tmp_path / "marked.jsonl"
    marked.write_text("\n".join([json.dumps({**json.loads(lines[9]), "verdict": "accept"})] + lines[10:]) + "\n")
    assert record_run_verdicts(str(marked), str(CLIP), model, str(store), [], [])[0].t == 9.0
    out = tmp_path / "after.jsonl"
    run(
        RunConfig(
            str(CLIP), bank=str(bank), model=model, jsonl=str(out), quiet=True, hop=1.0, top_k=10, feedback=str(store)
        )
    )
    after3, after6 = _ranks(out, 3.0), _ranks(out, 6.0)
    assert after3.index(lifted) < before3.index(lifted)
    assert rejected not in after6 or after6.index(rejected) > 0
    with pytest.raises(EdgeavError, match="no window"):
        record_run_verdicts(str(jsonl), str(CLIP), model, str(store), ["99"], [])


def test_adapt_tunes_only_the_visual_side_and_carries_feedback_over(tiny_run, tmp_path):
    from edgeav.models import load_model
    from edgeav_train.adapt import AdaptConfig, adapt

    d, model, bank, jsonl = tiny_run
    store = tmp_path / "verdicts.jsonl"
    record_run_verdicts(str(jsonl), str(CLIP), model, str(store), ["3"], ["6"])
    rep = adapt(
        AdaptConfig(
            footage=str(ASSETS / "clips"),
            sounds=str(ASSETS / "sounds" / "funnyboat"),
            model=model,
            out=str(tmp_path / "adapted"),
            steps=5,
            feedback=str(store),
        )
    )
    assert rep["clips"] == 2 and rep["feedback"]["verdicts"] == 2 and "stage2_s" in rep["seconds"]
    before, after = load_model(model).state_dict(), load_model(rep["model"]).state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # a student-like model adapts its whole visual encoder; the audio side and projector (the bank) stay fixed
    assert changed and all(k.startswith("visual.") for k in changed)
    new = FeedbackStore(rep["feedback"]["file"]).load()
    assert {v.model_id for v in new} == {TorchBackend(rep["model"]).model_id}
    with pytest.raises(EdgeavError, match="no videos found"):
        empty = tmp_path / "empty"
        empty.mkdir()
        adapt(AdaptConfig(footage=str(empty), sounds=str(ASSETS / "sounds"), model=model, out=str(tmp_path / "x")))


def test_live_view_keys_store_verdicts(tiny_run, tmp_path, monkeypatch):
    """The viewer's a / r keys judge the top suggestion of the window on screen; they land in --feedback."""
    import edgeav.display

    d, model, bank, _ = tiny_run
    keys = iter(["accept", None, "reject"])

    class FakeViewer:
        def __init__(self, *a):
            pass

        def show(self, frame, recs, t):
            return next(keys, "quit")

        def close(self):
            pass

    monkeypatch.setattr(edgeav.display, "Viewer", FakeViewer)
    store = tmp_path / "live.jsonl"
    res = run(RunConfig(str(CLIP), bank=str(bank), model=model, quiet=True, hop=1.0, show=True, feedback=str(store)))
    assert res.ended_by == "interrupted"  # q (here: keys ran out) ends cleanly
    vs = FeedbackStore(store).load()
    assert [(v.t, v.verdict) for v in vs] == [(0.0, "accept"), (2.0, "reject")] and len(vs[0].embedding) == 16


def test_a_verdict_on_an_event_line_is_kept_at_the_window_whose_sound_starts_at_the_event(tmp_path):
    from edgeav.feedback import verdicts_from_run

    rec = {"recommendations": [{"sound": "boat/kraah.ogg", "category": "", "score": 0.5}]}
    jl = tmp_path / "run.jsonl"
    lines = [
        {"type": "window", "t": 2.0, **rec, "verdict": "reject"},
        {"type": "event", "t": 2.48, "confidence": 0.9, **rec, "verdict": "accept"},
        {"type": "event", "t": 0.08, "confidence": 0.9, **rec},
    ]
    jl.write_text("".join(json.dumps(x) + "\n" for x in lines))
    got = verdicts_from_run(jl, [(0.1, None, "accept")])  # a mark nearest the event at 0.08 s
    assert got == [
        (2.0, "boat/kraah.ogg", "reject"),
        (2.28, "boat/kraah.ogg", "accept"),
        (0.0, "boat/kraah.ogg", "accept"),
    ]


def test_a_verdict_is_embedded_as_run_ranks_its_window_with_an_event_head(tmp_path, monkeypatch):
    """With an event head, `run` names a window's sound by the head's embedding a pre-roll in: the verdicts that
    `edgeav feedback`, the review page and adapt embed afterwards are that embedding, as the live keys store it."""
    import edgeav.display
    from edgeav.backends import load_backend
    from edgeav.bank import index_sounds
    from edgeav.feedback import embed_moments
    from edgeav.models import create_model, save_model
    from edgeav.models.card import ModelCard

    torch.manual_seed(0)
    m = create_model("tiny", event_widths=(4, 8), event_dim=8)
    model = str(save_model(m, tmp_path / "tiny_events", ModelCard(onset_threshold=1e9)))
    backend = load_backend(model)
    bank = tmp_path / "bank.npz"
    index_sounds(backend, [ASSETS / "sounds"], bank, progress=False, model_id=backend.model_id)
    keys = iter(["accept"] * 15)

    class AcceptingViewer:
        def __init__(self, *a):
            pass

        def show(self, frame, recs, t):
            return next(keys, None)

        def close(self):
            pass

    monkeypatch.setattr(edgeav.display, "Viewer", AcceptingViewer)
    store = tmp_path / "live.jsonl"
    run(RunConfig(str(CLIP), bank=str(bank), model=model, quiet=True, hop=1.0, show=True, feedback=str(store)))
    live = FeedbackStore(store).load()
    assert len(live) >= 14
    again = embed_moments(backend, str(CLIP), [v.t for v in live])
    stored = np.array([v.embedding for v in live], np.float32)
    cos = (again * stored).sum(1) / np.linalg.norm(again, axis=1) / np.linalg.norm(stored, axis=1)
    assert cos.min() > 0.999, cos  # the first window (the head's first scored frame) and the last included
